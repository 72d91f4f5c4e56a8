package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeReloadsConfig: racklet-boot serve picks up a changed rack config
// without a restart (file watch, and SIGHUP), rejects a broken one with one
// clear log line while the old config keeps serving, and a node's boot files
// follow its new boot source on the next request.
func TestServeReloadsConfig(t *testing.T) {
	need(t, "ss", "curl")
	dir := t.TempDir()
	a := bootDir(t, map[string]string{"cmdline.txt": "from source A\n"})
	b := bootDir(t, map[string]string{"cmdline.txt": "from source B\n"})
	ns := newHost(t, "rld")
	config := func(src string) string {
		return rackConfig("lo", "127.0.0.1", filepath.Join(dir, "data"), "mode: off", fmt.Sprintf(`nodes:
  - name: pi-01
    kind: rpi4
    serial: 5b154510
    boot: {dir: %s}
`, src))
	}
	srv := startServer(t, ns, dir, config(a))
	get := func() string {
		out, err := ns.Output(t.Context(), "curl", "-sS", "--max-time", "5", "http://127.0.0.1/boot/5b154510/cmdline.txt")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	waitFor := func(want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			if got := get(); got == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("the node never got %q (last: %q)", want, get())
	}
	if got := get(); got != "from source A\n" {
		t.Fatalf("before any reload: %q", got)
	}

	// A broken config (a second boot source and an unknown field): rejected, A keeps serving.
	replace := func(content string) {
		t.Helper()
		tmp := srv.config + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, srv.config); err != nil {
			t.Fatal(err)
		}
	}
	replace(strings.Replace(config(b), "boot: {dir:", "colour: blue\n    boot: {dir:", 1))
	srv.waitOutput(t, "config rejected, keeping the previous one", 20*time.Second)
	if got := get(); got != "from source A\n" {
		t.Fatalf("after a broken config: %q, want the old config still serving", got)
	}
	if !strings.Contains(srv.Output(), "colour") {
		t.Errorf("the rejection does not name the bad field")
	}

	// A good config, written in place: the node follows it.
	replace(config(b))
	waitFor("from source B\n")

	// SIGHUP reloads too (here: back to A, with the watch seeing the same change).
	if err := os.WriteFile(srv.config, []byte(config(a)), 0o644); err != nil {
		t.Fatal(err)
	}
	_ = srv.cmd.Process.Signal(syscall.SIGHUP)
	waitFor("from source A\n")
	if srv.Exited() {
		t.Fatal("the server exited on SIGHUP")
	}
}
