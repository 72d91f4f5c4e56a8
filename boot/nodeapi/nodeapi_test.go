package nodeapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/boot/nodeapi"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/store"
)

var clock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// rack: 10.0.0.100 is pi-01, 10.0.0.101 is pi-02, nothing else is known.
var rack = nodeapi.DirectoryFunc(func(_ context.Context, a netip.Addr) (string, bool, error) {
	switch a.String() {
	case "10.0.0.100":
		return "pi-01", true, nil
	case "10.0.0.101":
		return "pi-02", true, nil
	}
	return "", false, nil
})

func newHandler(t *testing.T) (*nodeapi.Handler, store.Store) {
	st := store.NewMemory()
	return &nodeapi.Handler{Nodes: rack, Events: st, Now: func() time.Time { return clock }, ReportsPerMinute: 3}, st
}

func do(h http.Handler, method, path, from, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = from + ":40000"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestWhoAmI(t *testing.T) {
	h, _ := newHandler(t)
	for _, tc := range []struct {
		name, method, from string
		status             int
		body               string
	}{
		{"known address", "GET", "10.0.0.100", 200, `{"node":"pi-01"}`},
		{"unknown address", "GET", "10.0.0.7", 404, "no node of the rack config is at 10.0.0.7"},
		{"wrong method", "POST", "10.0.0.100", 405, "use GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(h, tc.method, bootparams.WhoAmIPath, tc.from, "")
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Errorf("%s %s from %s = %d %s, want %d containing %q", tc.method, bootparams.WhoAmIPath, tc.from, w.Code, w.Body, tc.status, tc.body)
			}
		})
	}
}

func report(r bootparams.Report) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func TestReport(t *testing.T) {
	ok := bootparams.Report{Node: "pi-01", Stage: bootparams.StageRootVerified, OK: true, Image: "sha256:ab"}
	for _, tc := range []struct {
		name   string
		from   string
		body   string
		status int
		want   []store.Event // pi-01's timeline after the request
		msg    string
	}{
		{name: "recorded", from: "10.0.0.100", body: report(ok), status: 204,
			want: []store.Event{{Time: clock, Node: "pi-01", Type: "agent.root-verified", Detail: "image sha256:ab"}}},
		{name: "failure with its reason", from: "10.0.0.100", status: 204,
			body: report(bootparams.Report{Node: "pi-01", Stage: bootparams.StageFailed, Reason: "root.squashfs: digest mismatch"}),
			want: []store.Event{{Time: clock, Node: "pi-01", Type: "agent.failed", Detail: "FAILED; root.squashfs: digest mismatch"}}},
		{name: "another node's address", from: "10.0.0.101", body: report(ok), status: 403, msg: "10.0.0.101 is node pi-02, not node pi-01"},
		{name: "unknown address", from: "10.0.0.9", body: report(ok), status: 403, msg: "10.0.0.9 is no node"},
		{name: "unknown stage", from: "10.0.0.100", body: `{"node":"pi-01","stage":"dancing","ok":true}`, status: 400, msg: `dancing`},
		{name: "bad node name", from: "10.0.0.100", body: `{"node":"../x","stage":"network","ok":true}`, status: 400, msg: "not a node name"},
		{name: "ok failure", from: "10.0.0.100", body: `{"node":"pi-01","stage":"failed","ok":true}`, status: 400, msg: "cannot be ok"},
		{name: "control characters", from: "10.0.0.100", body: report(bootparams.Report{Node: "pi-01", Stage: "failed", Reason: "a\nb"}), status: 400, msg: "one line"},
		{name: "not JSON", from: "10.0.0.100", body: "hello", status: 400, msg: "not JSON"},
		{name: "too big", from: "10.0.0.100", body: `{"node":"pi-01","stage":"failed","reason":"` + strings.Repeat("x", 5000) + `"}`, status: 413, msg: "at most 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, st := newHandler(t)
			w := do(h, "POST", bootparams.ReportPath, tc.from, tc.body)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.msg) {
				t.Fatalf("status %d %s, want %d containing %q", w.Code, w.Body, tc.status, tc.msg)
			}
			got, err := st.Events(t.Context(), "pi-01", 0)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("pi-01's timeline (-want +got):\n%s", d)
			}
		})
	}
}

func TestReportRateLimit(t *testing.T) {
	h, st := newHandler(t)
	body := report(bootparams.Report{Node: "pi-01", Stage: bootparams.StageNetwork, OK: true})
	var codes []int
	for range 5 {
		codes = append(codes, do(h, "POST", bootparams.ReportPath, "10.0.0.100", body).Code)
	}
	// Another address has its own budget; a minute later pi-01 has a new one.
	codes = append(codes, do(h, "POST", bootparams.ReportPath, "10.0.0.101", report(bootparams.Report{Node: "pi-02", Stage: "network", OK: true})).Code)
	clock = clock.Add(time.Minute)
	defer func() { clock = clock.Add(-time.Minute) }()
	codes = append(codes, do(h, "POST", bootparams.ReportPath, "10.0.0.100", body).Code)
	if d := cmp.Diff([]int{204, 204, 204, 429, 429, 204, 204}, codes); d != "" {
		t.Errorf("status codes (-want +got):\n%s", d)
	}
	if ev, _ := st.Events(t.Context(), "pi-01", 0); len(ev) != 4 {
		t.Errorf("pi-01 has %d events, want 4", len(ev))
	}
}

func TestRoutes(t *testing.T) {
	h, _ := newHandler(t)
	if w := do(h, "GET", bootparams.ReportPath, "10.0.0.100", ""); w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET report = %d (Allow %q), want 405 with Allow: POST", w.Code, w.Header().Get("Allow"))
	}
	if w := do(h, "GET", bootparams.AgentPathPrefix+"nothing", "10.0.0.100", ""); w.Code != 404 {
		t.Errorf("unknown path = %d, want 404", w.Code)
	}
}

// fakeAB records the reports handed to it and decides pi-01's boot.
type fakeAB struct{ got []bootparams.Report }

func (f *fakeAB) Decision(node string) (bootparams.SlotBoot, bool) {
	if node != "pi-01" {
		return bootparams.SlotBoot{}, false
	}
	return bootparams.SlotBoot{Image: "sha256:22", Slot: "b", Trial: true, Attempt: 1, Allowed: 3}, true
}

func (f *fakeAB) Report(_ context.Context, r bootparams.Report) error {
	f.got = append(f.got, r)
	return nil
}

// TestAB: whoami carries the A/B decision; the reports that end a boot, and
// those carrying the HAT's state, go to the A/B machine; a HAT state out of
// range is refused.
func TestAB(t *testing.T) {
	h, _ := newHandler(t)
	h.ReportsPerMinute = 100
	ab := &fakeAB{}
	h.AB = ab
	if w := do(h, "GET", bootparams.WhoAmIPath, "10.0.0.100", ""); w.Code != 200 ||
		!strings.Contains(w.Body.String(), `"boot":{"image":"sha256:22","slot":"b","trial":true,"attempt":1,"allowed":3}`) {
		t.Errorf("whoami of pi-01 = %d %s, want its A/B decision", w.Code, w.Body)
	}
	if w := do(h, "GET", bootparams.WhoAmIPath, "10.0.0.101", ""); w.Code != 200 || strings.Contains(w.Body.String(), "boot") {
		t.Errorf("whoami of pi-02 = %d %s, want no A/B decision", w.Code, w.Body)
	}
	hat := &bootparams.HATState{Committed: "a", Limit: 3, Attempts: [2]int{0, 1}, Counter: 7, Allowed: true}
	for _, tc := range []struct {
		name   string
		rep    bootparams.Report
		status int
		toAB   bool
	}{
		{"network stage", bootparams.Report{Node: "pi-01", Stage: bootparams.StageNetwork, OK: true}, 204, false},
		{"attested with the HAT's state", bootparams.Report{Node: "pi-01", Stage: bootparams.StageAttested, OK: true, HAT: hat}, 204, true},
		{"healthy", bootparams.Report{Node: "pi-01", Stage: bootparams.StageHealthy, OK: true, Image: "sha256:ab"}, 204, true},
		{"failed", bootparams.Report{Node: "pi-01", Stage: bootparams.StageFailed, Reason: "health check"}, 204, true},
		{"bad slot", bootparams.Report{Node: "pi-01", Stage: bootparams.StageAttested, OK: true, HAT: &bootparams.HATState{Committed: "c"}}, 400, false},
		{"bad count", bootparams.Report{Node: "pi-01", Stage: bootparams.StageAttested, OK: true, HAT: &bootparams.HATState{Committed: "a", Limit: 300}}, 400, false},
	} {
		n := len(ab.got)
		if w := do(h, "POST", bootparams.ReportPath, "10.0.0.100", report(tc.rep)); w.Code != tc.status {
			t.Errorf("%s: status %d %s, want %d", tc.name, w.Code, w.Body, tc.status)
		}
		if got := len(ab.got) > n; got != tc.toAB {
			t.Errorf("%s: handed to A/B %v, want %v", tc.name, got, tc.toAB)
		}
	}
}
