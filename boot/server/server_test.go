package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// loopbackConfig serves one Pi (serial 5b154510) from boot with DHCP off,
// so the server needs no interface and no root.
func loopbackConfig(dir, boot, extra string) string {
	return `apiVersion: racklet.io/v1alpha1
kind: Rack
server: {address: 127.0.0.1, dataDir: ` + filepath.Join(dir, "data") + `}
dhcp: {mode: off}
nodes:
  - {name: pi-01, kind: rpi4, serial: 5b154510, boot: {dir: ` + boot + `}}
` + extra
}

// startLoopback runs a server on loopback and stops it when the test ends.
func startLoopback(t *testing.T, text string) *Server {
	t.Helper()
	s, err := New(parseConfig(t, t.TempDir(), text), Options{TFTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	return s
}

// get asks the server's HTTP handler for a path.
func get(t *testing.T, s *Server, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// TestReloadOnLoopback: a server with no DHCP serves a node's files, and a
// reload swaps its boot source, adds a node and drops one from the node
// API's known set, without a restart.
func TestReloadOnLoopback(t *testing.T) {
	dir := t.TempDir()
	a, b := bootTree(t, dir, "a", "one"), bootTree(t, dir, "b", "two")
	s := startLoopback(t, loopbackConfig(dir, a, ""))
	if code, body := get(t, s, "/boot/5b154510/cmdline.txt"); code != http.StatusOK || !strings.Contains(body, "marker=one") {
		t.Fatalf("before reload: %d %q", code, body)
	}
	nodes, err := s.Nodes(t.Context(), 0)
	if err != nil || len(nodes) != 1 || !nodes[0].Known || nodes[0].Kind != "rpi4" {
		t.Fatalf("nodes before reload: %+v, %v", nodes, err)
	}

	next := parseConfig(t, t.TempDir(), loopbackConfig(dir, b, "  - {name: pi-02, kind: rpi5, serial: 0000abcd, boot: {dir: "+a+"}}\n"))
	next.Nodes = next.Nodes[1:] // pi-01 leaves the rack
	if err := s.Reload(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, s, "/boot/0000abcd/cmdline.txt"); code != http.StatusOK || !strings.Contains(body, "marker=one") {
		t.Errorf("new node after reload: %d %q", code, body)
	}
	if code, _ := get(t, s, "/boot/5b154510/cmdline.txt"); code == http.StatusOK {
		t.Error("a node removed by the reload still gets its files")
	}
	nodes, err = s.Nodes(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, n := range nodes {
		known[n.Key] = n.Known
	}
	if !known["pi-02"] || known["pi-01"] {
		t.Errorf("known after reload = %v, want pi-02 only", known)
	}

	// Back to pi-01 from the other tree: the same node, new bytes.
	if err := s.Reload(t.Context(), parseConfig(t, t.TempDir(), loopbackConfig(dir, b, ""))); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, s, "/boot/5b154510/cmdline.txt"); code != http.StatusOK || !strings.Contains(body, "marker=two") {
		t.Errorf("after the second reload: %d %q", code, body)
	}
}

// TestNewRefusesLockedState: two servers on one data directory: the second
// cannot open the state and says so.
func TestNewRefusesLockedState(t *testing.T) {
	dir := t.TempDir()
	cfg := parseConfig(t, t.TempDir(), loopbackConfig(dir, bootTree(t, dir, "a", "one"), ""))
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "lock") {
		t.Errorf("second New on one data directory: %v, want a lock error", err)
	}
}
