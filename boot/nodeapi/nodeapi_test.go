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
