// Command httpbench serves a directory with racklet-boot's HTTP server
// (boot/http) for bench/http/run.sh, which compares it with nginx. Files
// are at /boot/<name>; every client gets the same directory.
//
//	go run ./bench/http -dir /tmp/blob -addr 127.0.0.1:18080
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	httpboot "github.com/racklet/racklet-boot/boot/http"
	"github.com/racklet/racklet-boot/boot/resolve"
)

// dirOpener resolves names to files under one directory. os.Root keeps
// every open inside it.
type dirOpener struct{ root *os.Root }

func (d dirOpener) Open(_ context.Context, req resolve.Request) (*resolve.File, error) {
	f, err := d.root.Open(req.Name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open %s: %w", req.Name, err)
		}
		return nil, fmt.Errorf("open %s: %w: %v", req.Name, resolve.ErrRefused, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file: %w", req.Name, os.ErrNotExist)
	}
	return &resolve.File{
		Content: f, Closer: f, Size: fi.Size(), ModTime: fi.ModTime(),
		ETag: fmt.Sprintf(`"%x-%x"`, fi.Size(), fi.ModTime().UnixNano()),
		Path: req.Name,
	}, nil
}

func main() {
	dir := flag.String("dir", ".", "directory to serve under /boot/")
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	verbose := flag.Bool("v", false, "log every request")
	flag.Parse()

	if err := run(*dir, *addr, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "httpbench:", err)
		os.Exit(1)
	}
}

func run(dir, addr string, verbose bool) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open directory to serve: %w", err)
	}
	defer root.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := &httpboot.Server{Files: dirOpener{root: root}}
	if verbose {
		s.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return s.ListenAndServe(ctx, addr)
}
