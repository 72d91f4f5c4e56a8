package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Go runs fn on a new goroutine whose OS thread has joined the namespace,
// and returns fn's error once fn returns. Everything fn does on its own
// goroutine (opening sockets, listing interfaces, blocking reads) happens
// inside the namespace; sockets it hands out stay there. The thread is never
// returned to the runtime's pool: it ends with the goroutine.
func (n Namespace) Go(fn func() error) <-chan error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open(filepath.Join("/run/netns", string(n)))
		if err != nil {
			done <- fmt.Errorf("open namespace %s: %w", n, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			done <- fmt.Errorf("enter namespace %s: %w", n, err)
			return
		}
		done <- fn()
	}()
	return done
}
