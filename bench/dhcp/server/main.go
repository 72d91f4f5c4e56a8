// Command server runs the racklet-boot DHCP server alone, in full mode with
// a bbolt lease store, for bench/dhcp/run.sh. It serves until SIGINT or
// SIGTERM, then prints the store's group-commit figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/racklet/racklet-boot/boot/dhcp"
	"github.com/racklet/racklet-boot/store"
)

func main() {
	iface := flag.String("iface", "", "interface to serve on")
	addr := flag.String("addr", "", "server address (option 54)")
	subnet := flag.String("subnet", "", "subnet, e.g. 10.78.0.0/16")
	start := flag.String("pool-start", "", "first pool address")
	end := flag.String("pool-end", "", "last pool address")
	db := flag.String("db", "", "bbolt lease database file (\"\" keeps leases in memory, without fsync)")
	events := flag.Bool("events", false, "record nodes and events in the store too")
	flag.Parse()
	if err := run(*iface, *addr, *subnet, *start, *end, *db, *events); err != nil {
		fmt.Fprintln(os.Stderr, "dhcp bench server:", err)
		os.Exit(1)
	}
}

func run(iface, addr, subnet, start, end, db string, events bool) error {
	srvAddr, err := netip.ParseAddr(addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	pfx, err := netip.ParsePrefix(subnet)
	if err != nil {
		return fmt.Errorf("-subnet: %w", err)
	}
	ps, err := netip.ParseAddr(start)
	if err != nil {
		return fmt.Errorf("-pool-start: %w", err)
	}
	pe, err := netip.ParseAddr(end)
	if err != nil {
		return fmt.Errorf("-pool-end: %w", err)
	}
	var st store.Store = store.NewMemory()
	if db != "" {
		b, err := store.OpenBolt(db, store.BoltOptions{})
		if err != nil {
			return err
		}
		st = b
	}
	defer st.Close()
	opts := dhcp.Options{
		Log:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Leases: st,
	}
	if events {
		opts.Events = st
	}
	srv := dhcp.New(dhcp.Settings{
		Mode:       dhcp.ModeFull,
		ServerAddr: srvAddr,
		Subnet:     pfx,
		Pool:       &dhcp.Pool{Start: ps, End: pe},
		Router:     srvAddr,
		LeaseTime:  time.Hour,
		Unknown:    dhcp.UnknownDefault,
	}, opts)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "serving")
	if err := srv.ListenAndServe(ctx, iface); err != nil {
		return err
	}
	if b, ok := st.(*store.Bolt); ok {
		s := b.Stats()
		fmt.Fprintf(os.Stderr, "store: %d writes in %d commits\n", s.Writes, s.Commits)
	}
	return nil
}
