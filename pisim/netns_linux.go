package pisim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// inNetNS runs fn on a thread switched into the named network namespace (a
// file under /run/netns, as ip netns makes them); sockets fn opens stay in
// that namespace. fn must be short and must not start goroutines that
// expect the namespace. An empty ns runs fn where the caller is.
func inNetNS(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return fmt.Errorf("network namespace %q: %w", ns, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %q: %w", ns, err)
	}
	ferr := fn()
	if err := setns(orig); err != nil {
		// Leave the thread locked: it ends with this goroutine instead of
		// running other goroutines in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("leave network namespace %q: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}
