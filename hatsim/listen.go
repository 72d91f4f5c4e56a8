package hatsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"github.com/racklet/racklet-boot/hatlink"
	"golang.org/x/sys/unix"
)

// ListenAndServe serves h on spec until ctx ends, then returns nil:
//
//	unix:PATH        a Unix socket (PATH is replaced if it is a stale socket)
//	tcp:HOST:PORT    a TCP socket; port 0 picks a free one
//	pty              a pseudo-terminal pair; the slave path is what a client opens
//
// ready, if not nil, is called once with the address clients use
// ("unix:PATH", "tcp:HOST:PORT" or the pty slave path). Each socket
// connection gets its own framing state; they share h.
func ListenAndServe(ctx context.Context, spec string, h hatlink.Handler, log *slog.Logger, ready func(addr string)) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if ready == nil {
		ready = func(string) {}
	}
	switch {
	case spec == "pty":
		return servePTY(ctx, h, log, ready)
	case strings.HasPrefix(spec, "unix:"):
		path := strings.TrimPrefix(spec, "unix:")
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(path)
		}
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "unix", path)
		if err != nil {
			return fmt.Errorf("listen for HAT clients: %w", err)
		}
		ready("unix:" + path)
		return serveListener(ctx, l, h, log)
	case strings.HasPrefix(spec, "tcp:"):
		var lc net.ListenConfig
		l, err := lc.Listen(ctx, "tcp", strings.TrimPrefix(spec, "tcp:"))
		if err != nil {
			return fmt.Errorf("listen for HAT clients: %w", err)
		}
		ready("tcp:" + l.Addr().String())
		return serveListener(ctx, l, h, log)
	}
	return fmt.Errorf("unknown listen address %q: use unix:PATH, tcp:HOST:PORT or pty", spec)
}

func serveListener(ctx context.Context, l net.Listener, h hatlink.Handler, log *slog.Logger) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept HAT client: %w", err)
		}
		log.Debug("hat client connected", "remote", c.RemoteAddr().String())
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			if err := hatlink.Serve(ctx, c, h); err != nil {
				log.Warn("hat client", "err", err)
			}
		}()
	}
}

func servePTY(ctx context.Context, h hatlink.Handler, log *slog.Logger, ready func(string)) error {
	ptmx, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("open pseudo-terminal: %w", err)
	}
	// Re-open the master non-blocking so the runtime poller serves it and
	// closing it (when ctx ends) interrupts a blocked Read.
	fd, err := unix.Dup(int(ptmx.Fd()))
	ptmx.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		slave.Close()
		return fmt.Errorf("open pseudo-terminal: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	// Keeping the slave open means a client closing its end never hangs
	// up the line, as a UART would not.
	defer slave.Close()
	if err := hatlink.MakeRaw(int(slave.Fd())); err != nil {
		master.Close()
		return fmt.Errorf("set pseudo-terminal raw: %w", err)
	}
	ready(slave.Name())
	log.Info("hat listening on pseudo-terminal", "path", slave.Name())
	return hatlink.Serve(ctx, master, h)
}

// DialAndServe serves h to racklet-boot as a board-management port: it
// connects to addr (tcp:HOST:PORT or unix:PATH, racklet-boot's BMC
// listener), serves requests until the connection ends, and connects again
// after a pause (1 s, doubling to 10 s while connecting fails), until ctx
// ends; then it returns nil.
func DialAndServe(ctx context.Context, addr string, h hatlink.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !strings.HasPrefix(addr, "tcp:") && !strings.HasPrefix(addr, "unix:") {
		return fmt.Errorf("racklet-boot BMC address %q: use tcp:HOST:PORT or unix:PATH", addr)
	}
	pause := time.Second
	for ctx.Err() == nil {
		c, err := hatlink.Dial(ctx, addr)
		if err == nil {
			log.Info("hat connected to racklet-boot", "server", addr)
			pause = time.Second
			if err := hatlink.Serve(ctx, c, h); err != nil {
				log.Warn("board-management link", "server", addr, "err", err)
			}
			c.Close()
		} else {
			log.Debug("connect to racklet-boot", "server", addr, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
		pause = min(2*pause, 10*time.Second)
	}
	return nil
}
