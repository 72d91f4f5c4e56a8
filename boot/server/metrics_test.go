package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMetricsOnLoopback: build info, the config gauges, a rejected file
// reload and an applied one, and the index page.
func TestMetricsOnLoopback(t *testing.T) {
	dir := t.TempDir()
	text := loopbackConfig(dir, bootTree(t, dir, "a", "one"), "")
	path := filepath.Join(dir, "rack.yaml")
	cfg := parseConfig(t, dir, text)
	s, err := New(cfg, Options{TFTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", ConfigFile: path})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)

	scrape := func() string {
		code, body := get(t, s, "/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		return body
	}
	has := func(body string, lines ...string) bool {
		for _, l := range lines {
			if !strings.Contains(body, l+"\n") {
				return false
			}
		}
		return true
	}
	body := scrape()
	if !strings.Contains(body, "racklet_build_info{goversion=") || !has(body, "racklet_config_nodes 1", "racklet_config_last_reload_successful 1") {
		t.Errorf("metrics after start lack build info or config gauges:\n%s", grep(body, "racklet_build|racklet_config"))
	}

	// A broken file is rejected and counted; the config in use stays.
	if err := os.WriteFile(path, []byte("apiVersion: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, scrape, func(b string) bool {
		return has(b, `racklet_config_reloads_total{result="rejected"} 1`, "racklet_config_last_reload_successful 0", "racklet_config_nodes 1")
	})
	// A good one with a second node is applied.
	if err := os.WriteFile(path, []byte(text+"  - {name: pi-02, kind: rpi5, serial: 0000abcd, boot: {dir: "+filepath.Join(dir, "a")+"}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitMetrics(t, scrape, func(b string) bool {
		return has(b, `racklet_config_reloads_total{result="ok"} 1`, "racklet_config_last_reload_successful 1", "racklet_config_nodes 2")
	})

	code, page := get(t, s, "/")
	if code != http.StatusOK || !strings.Contains(page, "racklet-boot") || !strings.Contains(page, "/api/v1/attest/") {
		t.Errorf("GET /: %d\n%s", code, page)
	}
}

// waitMetrics scrapes until ok holds, for at most 10 s.
func waitMetrics(t *testing.T, scrape func() string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := scrape()
		if ok(b) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics did not reach the expected values in 10 s:\n%s", grep(b, "racklet_config"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// grep returns the lines of s containing any of the |-separated words.
func grep(s, words string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range strings.Split(words, "|") {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
