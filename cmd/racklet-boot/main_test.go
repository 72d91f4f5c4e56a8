package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/rack"
)

// run runs racklet-boot as main does: its output, exit code and error.
func run(args ...string) (string, int, error) {
	root := newRoot()
	cli.Prepare(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	code, err := cli.Execute(context.Background(), root)
	return out.String(), code, err
}

// TestConventions: every command has an example and, unless it prints no
// data (serve logs; console copies the node's serial output as it came),
// -o table|json|yaml.
func TestConventions(t *testing.T) {
	for _, p := range cli.Lint(newRoot(), "racklet-boot serve", "racklet-boot console") {
		t.Error(p)
	}
}

// writeConfig writes a valid proxy-mode config with two nodes and returns
// its path and data directory.
func writeConfig(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	text := "apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver: {address: 10.0.0.2, dataDir: " + data + "}\ndhcp: {mode: off}\nnodes:\n" +
		"  - {name: pi-01, kind: rpi4, serial: 5b154510, boot: {dir: boot}}\n" +
		"  - {name: pi-02, kind: rpi5, serial: 0000abcd, boot: {dir: boot}}\n"
	path := filepath.Join(dir, "rack.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestConfigValidate(t *testing.T) {
	path, _ := writeConfig(t)
	out, code, err := run("config", "validate", path, "-o", "json")
	var v validated
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || !v.Valid || v.Nodes != 2 || v.DHCPMode != "off" {
		t.Errorf("validate -o json: exit %d %v\n%s", code, err, out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver:\n  adress: 10.0.0.2\ndhcp: {mode: proxy}\n"), 0o644)
	out, code, _ = run("config", "validate", bad, "-o", "yaml")
	if code != cli.ExitFailure || !strings.Contains(out, "valid: false") || !strings.Contains(out, `did you mean "address"`) || !strings.Contains(out, "line: 4") {
		t.Errorf("validate of a bad file -o yaml: exit %d\n%s", code, out)
	}
	if _, code, err := run("config", "validate", bad); code != cli.ExitFailure || !strings.Contains(err.Error(), "bad.yaml:4:3: server.adress") {
		t.Errorf("validate of a bad file: exit %d %v", code, err)
	}
	if _, code, _ := run("config", "validate", bad+".missing"); code != cli.ExitNotFound {
		t.Errorf("validate of a missing file: exit %d, want %d", code, cli.ExitNotFound)
	}
}

// TestNodesAndCompletion: nodes from a stopped server's data directory,
// one node's timeline, an unknown node (not found), and node names
// completed from the data directory.
func TestNodesAndCompletion(t *testing.T) {
	path, data := writeConfig(t)
	cfg, err := rack.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// The server records the config's nodes when it runs: run it briefly on loopback.
	srv, err := server.New(cfg, server.Options{TFTPAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", BMCAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	out, code, err := run("nodes", "--data-dir", data, "-o", "json")
	var nodes []server.NodeStatus
	if code != 0 || json.Unmarshal([]byte(out), &nodes) != nil || len(nodes) != 2 {
		t.Fatalf("nodes -o json: exit %d %v\n%s", code, err, out)
	}
	out, code, _ = run("nodes", "pi-02", "--data-dir", data)
	if code != 0 || !strings.HasPrefix(out, "pi-02  kind rpi5") || !strings.Contains(out, "no boot events") {
		t.Errorf("nodes pi-02: exit %d\n%s", code, out)
	}
	if _, code, err := run("nodes", "pi-09", "--data-dir", data); code != cli.ExitNotFound {
		t.Errorf("nodes pi-09: exit %d (%v), want %d", code, err, cli.ExitNotFound)
	}
	out, _, _ = run("__complete", "nodes", "--data-dir", data, "pi-01", "")
	if !strings.Contains(out, "pi-02\n") || strings.Contains(out, "pi-01\n") {
		t.Errorf("completion after pi-01 offers:\n%s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"unknown command":  {"frobnicate"},
		"unknown flag":     {"nodes", "--bogus"},
		"extra argument":   {"version", "x"},
		"missing required": {"simulate"},
		"bad format":       {"nodes", "-o", "xml"},
	} {
		if _, code, err := run(args...); code != cli.ExitUsage {
			t.Errorf("%s: exit %d (%v), want %d", name, code, err, cli.ExitUsage)
		}
	}
}

// TestServerKey: server-key makes the key pair in a fresh data directory
// (private half 0600), prints the public one, and prints the same key again
// (as serve then uses it).
func TestServerKey(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	var first, again struct{ Key, File string }
	for _, v := range []*struct{ Key, File string }{&first, &again} {
		out, code, err := run("server-key", "--data-dir", data, "-o", "json")
		if code != 0 || json.Unmarshal([]byte(out), v) != nil {
			t.Fatalf("server-key: exit %d %v\n%s", code, err, out)
		}
	}
	if !strings.HasPrefix(first.Key, "ed25519:") || first != again {
		t.Errorf("server-key printed %+v, then %+v", first, again)
	}
	pub, err := os.ReadFile(first.File)
	if err != nil || strings.TrimSpace(string(pub)) != first.Key {
		t.Errorf("%s holds %q (%v), want %s", first.File, pub, err, first.Key)
	}
	if fi, err := os.Stat(filepath.Join(data, "server-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("private key: %v %v, want mode 0600", fi, err)
	}
}
