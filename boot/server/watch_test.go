package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/rack"
)

// recorder is a slog.Handler that sends every record's level and message to a channel.
type recorder struct{ ch chan string }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	line := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			line += " err=" + a.Value.String()
		}
		return true
	})
	r.ch <- line
	return nil
}
func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }

// replace writes data to path the way editors and "mv" do: a new file renamed over the old.
func replace(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// nodeConfig is a proxy-mode config with one Pi named name.
func nodeConfig(name string) string {
	return strings.Join([]string{"apiVersion: racklet.io/v1alpha1", "kind: Rack", "server:", "  address: 10.0.0.2", "dhcp:",
		"  mode: proxy", "nodes:", "  - name: " + name, "    kind: rpi4", "    serial: 5b154510", "    boot: {dir: boot}"}, "\n") + "\n"
}

// configDir makes a temp dir with a boot/ directory and returns the config
// file name in it.
func configDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "rack.yaml")
}

func TestWatch(t *testing.T) {
	path := configDir(t)
	replace(t, path, nodeConfig("pi-01"))
	logs := make(chan string, 100)
	applied := make(chan *rack.Config, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, path, slog.New(recorder{logs}), func(c *rack.Config) { applied <- c })
	}()
	wait := func(what string, match func(string) bool) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l := <-logs:
				if match(l) {
					return
				}
			case <-deadline:
				t.Fatalf("no log line for %s within 30 s", what)
			}
		}
	}
	expectApplied := func(want string) {
		t.Helper()
		select {
		case c := <-applied:
			if len(c.Nodes) != 1 || c.Nodes[0].Name != want {
				t.Fatalf("applied config has nodes %+v, want %s", c.Nodes, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("config with %s not applied within 30 s", want)
		}
	}
	wait("start", func(l string) bool { return strings.HasPrefix(l, "INFO watching") }) // signal.Notify is in place

	replace(t, path, nodeConfig("Not_A_Label"))
	wait("rejection", func(l string) bool {
		return strings.HasPrefix(l, "ERROR config rejected, keeping the previous one err=") && strings.Contains(l, "not a DNS label")
	})
	select {
	case c := <-applied:
		t.Fatalf("a broken config was applied: %+v", c)
	default:
	}

	replace(t, path, nodeConfig("pi-02"))
	expectApplied("pi-02")

	if err := os.WriteFile(path, []byte(nodeConfig("pi-03")), 0o644); err != nil { // in place, as with echo >
		t.Fatal(err)
	}
	expectApplied("pi-03")

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectApplied("pi-03")

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	err := Watch(context.Background(), filepath.Join(t.TempDir(), "no", "rack.yaml"), nil, func(*rack.Config) {})
	if err == nil || !strings.Contains(err.Error(), "watch rack config directory") {
		t.Errorf("Watch on a missing directory: %v", err)
	}
}
