package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzOpen uses arbitrary bytes as a state.db: Check, OpenBolt, every read,
// a write and Repair. Nothing may panic; failures wrap ErrCorrupt; and a
// file whose pages validate must never trip bbolt itself (the panic guard
// must not be what saves it).
func FuzzOpen(f *testing.F) {
	dir := scratch(f)
	seed := filepath.Join(dir, "seed.db")
	st, err := OpenBolt(seed, BoltOptions{EventLimit: 3})
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		st.PutLease(ctx, Lease{MAC: fmt.Sprintf("dc:a6:32:00:00:%02x", i), Addr: netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 9)}), State: "bound"})
		st.PutNode(ctx, Node{Key: fmt.Sprintf("pi-%d", i), Name: fmt.Sprintf("pi-%d", i)})
		for j := range 4 {
			st.AddEvent(ctx, Event{Node: fmt.Sprintf("pi-%d", i), Type: "dhcp.ack", Detail: strings.Repeat("x", j*900)})
		}
	}
	st.Close()
	good, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:8192])
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		path := filepath.Join(dir, fmt.Sprintf("f-%d.db", time.Now().UnixNano()))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		_, _, problems, _ := inspect(data)
		if _, err := Check(path, time.Second); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Check: %v", err)
		}
		outcome, err := useDamaged(context.Background(), path)
		if outcome == "panic" {
			t.Fatal(err)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: %v, want ErrCorrupt", outcome, err)
		}
		if err != nil && len(problems) == 0 && len(data) > 0 && strings.Contains(err.Error(), "bbolt failed") {
			t.Fatalf("pages validated, yet bbolt tripped: %v", err)
		}
		rep, err := Repair(path, time.Second)
		if err != nil {
			t.Fatalf("Repair: %v", err)
		}
		os.Remove(rep.Old)
		st, err := OpenBolt(path, BoltOptions{})
		if err != nil {
			t.Fatalf("the repaired file does not open: %v", err)
		}
		defer st.Close()
		if _, err := readAll(context.Background(), st); err != nil {
			t.Fatalf("the repaired file does not read: %v", err)
		}
	})
}
