package adminauth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Socket is the operator API's unix socket: mode 0600, and every accepted
// connection's peer (SO_PEERCRED) must be root or this process's user;
// others are closed at once. Requests over it are operators' (IsLocal).
type Socket struct {
	*net.UnixListener
	path string
	log  *slog.Logger
}

// ListenSocket listens on path, replacing a stale socket file left by a
// server that died (but not one another racklet-boot still answers on).
func ListenSocket(ctx context.Context, path string, log *slog.Logger) (*Socket, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("operator socket %s exists and is not a socket: move it away", path)
		}
		d := net.Dialer{Timeout: time.Second}
		if c, err := d.DialContext(ctx, "unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("operator socket %s: another racklet-boot serves this data directory", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the stale operator socket: %w", err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen for operators on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("operator socket %s: %w", path, err)
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(true)
	return &Socket{UnixListener: ul, path: path, log: log}, nil
}

// localConn is an accepted connection from an allowed peer.
type localConn struct {
	net.Conn
	uid uint32
}

// Accept returns the next connection from root or this process's user.
func (s *Socket) Accept() (net.Conn, error) {
	for {
		c, err := s.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && (uid == 0 || int(uid) == os.Geteuid()) {
			return &localConn{Conn: c, uid: uid}, nil
		}
		s.log.Warn("operator socket: connection refused", "uid", uid, "err", err)
		c.Close()
	}
}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return 0, err
	}
	if cerr != nil {
		return 0, cerr
	}
	return cred.Uid, nil
}

// ServeSocket serves h to the socket's operators until ctx ends, then
// closes it (removing the file).
func ServeSocket(ctx context.Context, s *Socket, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if _, ok := c.(*localConn); ok {
				return WithLocal(ctx)
			}
			return ctx
		},
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ErrorLog:    slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve the operator socket: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve the operator socket: %w", err)
	}
	return nil
}
