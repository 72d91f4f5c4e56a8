// Package testutil holds what the tests of several packages share: finding
// the real tools (peers nobody here wrote) a test talks to, requiring root,
// and running a server for the length of a test. Outside CI a missing tool or root skips the test, saying why; with
// CI=true it fails, so CI can never pass by skipping.
package testutil

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable fails the test in CI and skips it elsewhere, with msg.
func Unavailable(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (CI=true: install it with bash scripts/deps.sh)", msg)
	}
	t.Skip(msg)
}

// NeedTool returns the path of a command on PATH, or stops the test.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, name+" is not installed: "+err.Error())
	}
	return p
}

// NeedRoot stops the test unless it runs as root; why says what for.
func NeedRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root: "+why)
	}
}

// Serve runs serve on a goroutine with a context that ends when the test
// ends; the test then fails unless serve returns nil within 30 s. It is
// how tests run a server (Serve(ctx, conn) methods) for their whole length.
func Serve(t testing.TB, serve func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server returned %v after its context ended, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not return within 30 s of its context ending")
		}
	})
}
