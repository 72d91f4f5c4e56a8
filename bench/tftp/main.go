// Command tftp-bench-server serves a directory with racklet-boot's TFTP
// server, for bench/tftp/run.sh to compare with other servers. It resolves
// names inside the directory only (os.Root), with no per-node logic. With
// -proxy it is instead a delaying UDP relay in front of any TFTP server, to
// give loopback a LAN-like round-trip time.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/boot/tftp"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	addr := flag.String("addr", "127.0.0.1:6969", "UDP address to listen on")
	dir := flag.String("root", ".", "directory to serve")
	maxWindow := flag.Int("max-window", 0, "windowsize cap (0: the server default)")
	timeout := flag.Duration("timeout", 0, "retransmit timeout (0: the server default)")
	verbose := flag.Bool("v", false, "log every transfer")
	proxy := flag.String("proxy", "", "instead of serving, relay from -addr to this TFTP server with -delay each way")
	delay := flag.Duration("delay", 200*time.Microsecond, "one-way delay added by -proxy")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the server to this file when it stops")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *proxy != "" {
		return runProxy(ctx, *addr, *proxy, *delay)
	}

	root, err := os.OpenRoot(*dir)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stopProfile, err := startProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	s := &tftp.Server{
		Files:     dirOpener{root},
		Log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		MaxWindow: *maxWindow,
		Timeout:   *timeout,
	}
	return s.ListenAndServe(ctx, *addr)
}

// startProfile starts a CPU profile written to path; stop writes it.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// dirOpener opens files inside one directory.
type dirOpener struct{ root *os.Root }

func (d dirOpener) Open(ctx context.Context, req resolve.Request) (*resolve.File, error) {
	f, err := d.root.Open(req.Name)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", req.Name, err)
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %q: not a regular file: %w", req.Name, os.ErrNotExist)
	}
	return &resolve.File{
		Content: f,
		Closer:  f,
		Size:    fi.Size(),
		ModTime: fi.ModTime().Truncate(time.Second),
		Path:    req.Name,
	}, nil
}
