package httpboot

import (
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/store"
)

func apiFixture(t *testing.T) (*fakeStore, string) {
	t.Helper()
	seen := time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)
	st := &fakeStore{
		nodes: []store.Node{
			{Key: "pi-02", Name: "pi-02", MAC: "dc:a6:32:00:00:02", Kind: "rpi4", Arch: 0, Known: true, FirstSeen: seen, LastSeen: seen},
			{Key: "pi-01", Name: "pi-01", MAC: "dc:a6:32:00:00:01", Serial: "5b154510", Kind: "rpi4", Known: true, FirstSeen: seen, LastSeen: seen},
			{Key: "mac:52:54:00:12:34:56", MAC: "52:54:00:12:34:56", Kind: "ipxe", Arch: -1, FirstSeen: seen, LastSeen: seen},
		},
		leases: []store.Lease{
			{MAC: "dc:a6:32:00:00:01", Addr: netip.MustParseAddr("10.0.0.101"), Node: "pi-01", Expiry: seen.Add(time.Hour), State: "bound"},
			{MAC: "52:54:00:12:34:56", Addr: netip.MustParseAddr("10.0.0.150"), Expiry: seen.Add(time.Hour), State: "offered"},
		},
		events: []store.Event{
			{Time: seen, Node: "pi-01", Type: "dhcp.discover"},
			{Time: seen.Add(time.Second), Node: "pi-01", Type: "dhcp.ack", Detail: "10.0.0.101"},
			{Time: seen.Add(2 * time.Second), Node: "pi-01", Type: "tftp.get", Detail: "start4.elf", Bytes: 2 << 20},
			{Time: seen, Node: "pi-02", Type: "dhcp.discover"},
		},
	}
	return st, startServer(t, &Server{Nodes: st})
}

func TestNodeAPI(t *testing.T) {
	st, url := apiFixture(t)
	l1, l2 := st.leases[0], st.leases[1]
	tests := map[string]struct {
		path     string
		wantCode int
		decode   func([]byte) (any, error)
		want     any
	}{
		"list": {
			path: "/api/v1/nodes", wantCode: 200, decode: decodeAs[NodeList],
			want: NodeList{Nodes: []NodeView{
				{Node: st.nodes[2], Lease: &l2},
				{Node: st.nodes[1], Lease: &l1},
				{Node: st.nodes[0]},
			}},
		},
		"one": {
			path: "/api/v1/nodes/pi-01", wantCode: 200, decode: decodeAs[NodeView],
			want: NodeView{Node: st.nodes[1], Lease: &l1},
		},
		"discovered by mac key": {
			path: "/api/v1/nodes/mac:52:54:00:12:34:56", wantCode: 200, decode: decodeAs[NodeView],
			want: NodeView{Node: st.nodes[2], Lease: &l2},
		},
		"unknown": {
			path: "/api/v1/nodes/pi-99", wantCode: 404, decode: decodeAs[APIError],
			want: APIError{Error: `node "pi-99" not found`},
		},
		"events": {
			path: "/api/v1/nodes/pi-01/events", wantCode: 200, decode: decodeAs[EventList],
			want: EventList{Node: "pi-01", Events: st.events[:3]},
		},
		"events limited": {
			path: "/api/v1/nodes/pi-01/events?limit=1", wantCode: 200, decode: decodeAs[EventList],
			want: EventList{Node: "pi-01", Events: st.events[2:3]},
		},
		"events of unknown": {
			path: "/api/v1/nodes/nope/events", wantCode: 404, decode: decodeAs[APIError],
			want: APIError{Error: `node "nope" not found`},
		},
		"bad limit": {
			path: "/api/v1/nodes/pi-01/events?limit=-3", wantCode: 400, decode: decodeAs[APIError],
			want: APIError{Error: `limit must be a whole number from 0 to 100000, got "-3"`},
		},
		"no events yet": {
			path: "/api/v1/nodes/mac:52:54:00:12:34:56/events", wantCode: 200, decode: decodeAs[EventList],
			want: EventList{Node: "mac:52:54:00:12:34:56", Events: []store.Event{}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := curl(t, url+tc.path)
			if got.code != tc.wantCode {
				t.Errorf("status = %d, want %d", got.code, tc.wantCode)
			}
			if ct := got.header("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			v, err := tc.decode(got.body)
			if err != nil {
				t.Fatalf("decode %s: %v", got.body, err)
			}
			if diff := cmp.Diff(tc.want, v, addrEqual); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNodeAPIFieldNames pins the JSON field names clients rely on.
func TestNodeAPIFieldNames(t *testing.T) {
	_, url := apiFixture(t)
	got := curl(t, url+"/api/v1/nodes/pi-01")
	var raw map[string]any
	if err := json.Unmarshal(got.body, &raw); err != nil {
		t.Fatal(err)
	}
	want := []string{"firstSeen", "key", "kind", "known", "lastSeen", "lease", "mac", "name", "serial"}
	if diff := cmp.Diff(want, slices.Sorted(maps.Keys(raw))); diff != "" {
		t.Errorf("node fields (-want +got):\n%s", diff)
	}
	lease, _ := raw["lease"].(map[string]any)
	if diff := cmp.Diff([]string{"addr", "expiry", "mac", "node", "state"}, slices.Sorted(maps.Keys(lease))); diff != "" {
		t.Errorf("lease fields (-want +got):\n%s", diff)
	}
}

func TestNodeAPIStoreFailures(t *testing.T) {
	st, url := apiFixture(t)
	st.err = errors.New("bbolt: database not open")
	got := curl(t, url+"/api/v1/nodes")
	if got.code != 500 || !strings.Contains(string(got.body), "list nodes failed") {
		t.Errorf("store failure: got %d %s, want 500 naming the failed step", got.code, got.body)
	}
	if strings.Contains(string(got.body), "bbolt") {
		t.Errorf("internal error text leaked to the client: %s", got.body)
	}

	noStore := startServer(t, &Server{})
	got = curl(t, noStore+"/api/v1/nodes")
	if got.code != 503 {
		t.Errorf("no store: status %d, want 503", got.code)
	}
	got = curl(t, noStore+"/boot/kernel8.img")
	if got.code != 503 {
		t.Errorf("no resolver: status %d, want 503", got.code)
	}
}

func decodeAs[T any](b []byte) (any, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

// addrEqual lets cmp compare netip.Addr values (unexported fields).
var addrEqual = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// TestWithMemoryStore runs the server on the store package's own in-memory
// Store: a boot file sent to pi-01 shows up in its event log over the API.
func TestWithMemoryStore(t *testing.T) {
	ctx := t.Context()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	if err := st.PutNode(ctx, store.Node{Key: "pi-01", Name: "pi-01", MAC: "dc:a6:32:00:00:01", Kind: "rpi4", Known: true, FirstSeen: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	files := newDirOpener(t, map[string][]byte{"cmdline.txt": []byte("console=serial0\n")})
	url := startServer(t, &Server{Files: files, Nodes: st, Events: st})

	if got := curl(t, url+"/boot/cmdline.txt"); got.code != 200 {
		t.Fatalf("boot file: status %d", got.code)
	}
	got := curl(t, url+"/api/v1/nodes/pi-01/events")
	var list EventList
	if err := json.Unmarshal(got.body, &list); err != nil {
		t.Fatalf("decode %s: %v", got.body, err)
	}
	type ev struct {
		Node, Type, Detail string
		Bytes              int64
	}
	var evs []ev
	for _, e := range list.Events {
		evs = append(evs, ev{e.Node, e.Type, e.Detail, e.Bytes})
	}
	want := []ev{{"pi-01", "http.get", "cmdline.txt", 16}}
	if diff := cmp.Diff(want, evs); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}
