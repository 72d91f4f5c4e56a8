package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Thread is an OS thread that stays in a network namespace, for a process
// that stays outside it: Do runs a function there. A socket opened in Do
// belongs to the namespace for its whole life, whichever goroutine uses it
// afterwards; reading /proc/thread-self/net in Do shows the namespace's
// tables. It lets a test or the lab run a server in a namespace in-process.
type Thread struct {
	ns   Namespace
	reqs chan func()
	done chan struct{}
}

// Thread starts a thread in the namespace. Close ends it.
func (n Namespace) Thread() (*Thread, error) {
	t := &Thread{ns: n, reqs: make(chan func()), done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it ends with this goroutine, so it
		// never runs another goroutine inside the namespace.
		runtime.LockOSThread()
		defer close(t.done)
		f, err := os.Open(filepath.Join("/run/netns", string(n)))
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		if err != nil {
			started <- fmt.Errorf("enter network namespace %s: %w", n, err)
			return
		}
		started <- nil
		for fn := range t.reqs {
			fn()
		}
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return t, nil
}

// Do runs fn on the thread and returns its error.
func (t *Thread) Do(fn func() error) error {
	errc := make(chan error, 1)
	select {
	case t.reqs <- func() { errc <- fn() }:
	case <-t.done:
		return fmt.Errorf("network namespace %s: the thread has ended", t.ns)
	}
	return <-errc
}

// Close ends the thread once its current Do returns.
func (t *Thread) Close() {
	close(t.reqs)
	<-t.done
}
