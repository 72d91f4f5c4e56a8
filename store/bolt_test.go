package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func openBolt(t *testing.T, path string, opts BoltOptions) *Bolt {
	t.Helper()
	b, err := OpenBolt(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRestart closes and reopens the database and finds leases, nodes and events intact.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data", "state.db") // the directory is created
	b := openBolt(t, path, BoltOptions{EventLimit: 4})
	leases := []Lease{
		{MAC: "dc:a6:32:00:00:01", Addr: addr1, Node: "pi-01", Hostname: "pi-01", Expiry: t0, State: "bound"},
		{MAC: "dc:a6:32:00:00:02", Addr: addr2, Expiry: t0, State: "declined"},
	}
	nodes := []Node{
		{Key: "mac:52:54:00:00:00:01", MAC: "52:54:00:00:00:01", Kind: "ipxe", Arch: 7, Addr: "10.0.0.5", FirstSeen: t0, LastSeen: t0},
		{Key: "pi-01", Name: "pi-01", Serial: "5b154510", Kind: "rpi4", Arch: -1, FirstSeen: t0, LastSeen: t0, Known: true},
	}
	var events []Event
	for i := range 6 {
		events = append(events, ev("pi-01", i))
	}
	for _, l := range leases {
		if err := b.PutLease(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		if err := b.PutNode(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range events {
		if err := b.AddEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen with a lower limit: the log keeps 4 until the next append trims it to 2.
	b = openBolt(t, path, BoltOptions{EventLimit: 2})
	defer b.Close()
	gotLeases, err := b.Leases(ctx)
	if diff := cmp.Diff(leases, gotLeases, cmpOpts...); err != nil || diff != "" {
		t.Errorf("leases after restart (%v) (-want +got):\n%s", err, diff)
	}
	gotNodes, err := b.Nodes(ctx)
	if diff := cmp.Diff(nodes, gotNodes, cmpOpts...); err != nil || diff != "" {
		t.Errorf("nodes after restart (%v) (-want +got):\n%s", err, diff)
	}
	gotEvents, err := b.Events(ctx, "pi-01", 0)
	if diff := cmp.Diff(events[2:], gotEvents, cmpOpts...); err != nil || diff != "" {
		t.Errorf("events after restart (%v) (-want +got):\n%s", err, diff)
	}
	if err := b.AddEvent(ctx, ev("pi-01", 6)); err != nil {
		t.Fatal(err)
	}
	gotEvents, err = b.Events(ctx, "pi-01", 0)
	if diff := cmp.Diff([]Event{events[5], ev("pi-01", 6)}, gotEvents, cmpOpts...); err != nil || diff != "" {
		t.Errorf("events after a lowered limit (%v) (-want +got):\n%s", err, diff)
	}
}

// TestLocked opens the same file twice: the second open names the file and wraps ErrLocked.
func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	b := openBolt(t, path, BoltOptions{})
	defer b.Close()
	start := time.Now()
	_, err := OpenBolt(path, BoltOptions{OpenTimeout: 200 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second open: %v; want an error naming %s and wrapping ErrLocked", err, path)
	}
	if d := time.Since(start); d < 100*time.Millisecond { // bbolt polls the lock every 50 ms
		t.Errorf("second open gave up after %s, before its timeout", d)
	}
	b.Close()
	b2 := openBolt(t, path, BoltOptions{OpenTimeout: 200 * time.Millisecond})
	b2.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		opts BoltOptions
		want string
	}{
		{"path is a directory", dir, BoltOptions{}, "open state database " + dir},
		{"not a bbolt file", garbage, BoltOptions{}, "open state database " + garbage},
		{"event limit below one", filepath.Join(dir, "x.db"), BoltOptions{EventLimit: -1}, "keep at least 1 event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := OpenBolt(tc.path, tc.opts)
			if err == nil {
				b.Close()
				t.Fatalf("OpenBolt(%s) succeeded", tc.path)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestGroupCommit checks that concurrent writers share commits.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	b := openBolt(t, filepath.Join(t.TempDir(), "state.db"), BoltOptions{BatchDelay: 20 * time.Millisecond})
	defer b.Close()
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- b.PutLease(ctx, Lease{MAC: fmt.Sprintf("02:00:00:00:00:%02x", i), Addr: addr1, State: "bound"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	st := b.Stats()
	if st.Writes != n || st.Commits >= n/2 {
		t.Errorf("stats %+v: want %d writes in well under %d commits", st, n, n/2)
	}
	leases, err := b.Leases(ctx)
	if err != nil || len(leases) != n {
		t.Errorf("read back %d leases (%v), want %d", len(leases), err, n)
	}
}
