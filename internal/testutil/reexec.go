package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// Reexec runs this test binary again as a child with env added (the child's
// TestMain recognises its role from env), running no test of its own. It
// returns the child's standard output and whether the child died by
// SIGKILL; any other failure fails the test with the child's stderr.
func Reexec(t testing.TB, env ...string) (stdout []byte, killed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err == nil {
		return out, false
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return out, true
	}
	t.Fatalf("child %v: %v\n%s", env, err, stderr.Bytes())
	return nil, false
}

// KillAt returns a crash hook for a Reexec child: its n-th call kills the
// process with SIGKILL (no deferred calls, no flushing), as a power cut or
// kill -9 would; n <= 0 never kills. Calls before then run before, if set.
func KillAt(n int, before func(point string)) func(point string) {
	calls := 0
	return func(point string) {
		if before != nil {
			before(point)
		}
		if calls++; calls == n {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
}
