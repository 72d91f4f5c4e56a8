package tftp

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a1 := netip.MustParseAddrPort("10.0.0.1:1001")
	a2 := netip.MustParseAddrPort("10.0.0.1:1002")
	a3 := netip.MustParseAddrPort("10.0.0.1:1003")
	b1 := netip.MustParseAddrPort("10.0.0.2:1001")
	c1 := netip.MustParseAddrPort("10.0.0.3:1001")
	l := newLimiter(3, 2)
	steps := []struct {
		name      string
		peer      netip.AddrPort
		file      string
		at        time.Duration
		want      string
		wantFirst time.Duration
	}{
		{"first request", a1, "f", 0, admitOK, 0},
		{"retransmitted request", a1, "f", 1, admitDuplicate, 0},
		{"another file from the same port", a1, "g", 2, admitOK, 0},
		{"third from one client", a2, "f", 3, admitClientFull, 0},
		{"another client", b1, "f", 4, admitOK, 4},
		{"server full", c1, "f", 5, admitServerFull, 0},
	}
	for _, s := range steps {
		first, why := l.acquire(s.peer, s.file, t0.Add(s.at))
		if why != s.want {
			t.Fatalf("%s: got %q, want %q", s.name, why, s.want)
		}
		if why == admitOK && !first.Equal(t0.Add(s.wantFirst)) {
			t.Errorf("%s: first seen %v, want %v", s.name, first.Sub(t0), s.wantFirst)
		}
	}
	l.release(a1, "f", t0.Add(10))
	if _, why := l.acquire(a3, "f", t0.Add(11)); why != admitOK {
		t.Fatalf("after a release: %q, want admitted", why)
	}
	l.release(b1, "f", t0.Add(12))
	if _, why := l.acquire(a1, "f", t0.Add(13)); why != admitClientFull {
		t.Fatalf("client back at its cap: %q", why)
	}
	// A client idle past clientMemory starts a new run of requests.
	l.release(a1, "g", t0)
	l.release(a3, "f", t0)
	first, _ := l.acquire(a1, "h", t0.Add(time.Second))
	if !first.Equal(t0) {
		t.Errorf("client back within clientMemory: first seen %v, want the original", first)
	}
	l.release(a1, "h", t0.Add(time.Second))
	later := t0.Add(time.Second + clientMemory + time.Second)
	if first, _ := l.acquire(a1, "h", later); !first.Equal(later) {
		t.Errorf("client back after clientMemory: first seen %v, want %v", first, later)
	}
	if got := l.open(); got != 1 {
		t.Errorf("open = %d, want 1", got)
	}
}

// gx makes a transfer of client a (first seen at first) for the gate.
func gx(a string, first time.Duration) *xfer {
	return &xfer{peer: netip.MustParseAddrPort(a), firstSeen: time.Unix(1000, 0).Add(first), heldI: -1}
}

// TestGate plays a storm through the gate: two places, clients let in by
// the deadline of their held requests as others leave and linger out.
func TestGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := newGate(2, 10*time.Second, 30*time.Second, 2*time.Second)
	hold := func(x *xfer, at, d time.Duration) {
		t.Helper()
		if g.enter(x) {
			t.Fatalf("%s let in with the gate full", x.peer)
		}
		x.hold(t0.Add(at), d)
		g.holdX(x)
	}
	a1, b1 := gx("10.0.0.1:1", 0), gx("10.0.0.2:1", 1)
	if !g.enter(a1) || !g.enter(b1) {
		t.Fatal("the first two clients were not let in")
	}
	a2 := gx("10.0.0.1:2", 0)
	if !g.enter(a2) {
		t.Fatal("a second request of an admitted client was held")
	}
	c1, d1 := gx("10.0.0.3:1", 3), gx("10.0.0.4:1", 4)
	hold(c1, 3*time.Second, 10*time.Second) // a small file: held until 13 s
	hold(d1, 4*time.Second, 5*time.Second)  // a kernel: held until 9 s
	d2 := gx("10.0.0.4:2", 4)
	hold(d2, 5*time.Second, 10*time.Second)
	if n, _ := g.next(); n != nil {
		t.Fatal("let a node in while the gate is full")
	}

	// a's transfers end: a lingers, keeping its place for 2 s.
	g.leave(a1, t0.Add(6*time.Second))
	g.leave(a2, t0.Add(6*time.Second))
	g.expire(t0.Add(7 * time.Second))
	if n, _ := g.next(); n != nil {
		t.Fatal("a lingering node's place was given away")
	}
	a3 := gx("10.0.0.1:3", 0)
	if !g.enter(a3) {
		t.Fatal("a lingering node's next request was held")
	}
	g.leave(a3, t0.Add(7*time.Second)) // done again, for good
	g.expire(t0.Add(10 * time.Second))
	n, xs := g.next()
	if n == nil || n.addr != netip.MustParseAddr("10.0.0.4") {
		t.Fatalf("let in %v, want 10.0.0.4 (its kernel must start first)", n)
	}
	if len(xs) != 2 || xs[0] != d1 || xs[1] != d2 {
		t.Errorf("released %d requests, want d's two in the order they came", len(xs))
	}
	if len(g.held) != 1 || g.held[0] != c1 || c1.heldI != 0 {
		t.Errorf("held after the release: %d, want c only", len(g.held))
	}
	if n, _ := g.next(); n != nil {
		t.Fatal("let a third node in")
	}
	// A node that is demoted (it never answered) makes room.
	g.demote(b1.node)
	if n, xs := g.next(); n == nil || len(xs) != 1 || xs[0] != c1 {
		t.Fatalf("after a demotion: let in %v with %d requests, want 10.0.0.3", n, len(xs))
	}
}

func TestGateHoldFor(t *testing.T) {
	g := newGate(2, 10*time.Second, 30*time.Second, 2*time.Second)
	for _, tc := range []struct {
		size int64
		want time.Duration
	}{
		{0, 10 * time.Second},       // a miss: maxHold
		{-1, 10 * time.Second},      // size unknown: as small
		{20 << 20, 1_528_240_000},   // a 20 MiB kernel at 1 MB/s: 22.5 s - 20.97 s
		{100 << 20, 0},              // no time to spare
		{5 << 20, 10 * time.Second}, // 22.5 - 5.2 s, capped
	} {
		if got := g.holdFor(tc.size); got.Round(time.Millisecond) != tc.want.Round(time.Millisecond) {
			t.Errorf("holdFor(%d) = %v, want %v", tc.size, got, tc.want)
		}
	}
	g.measured(10<<20, 2*time.Second)
	if want := 0.8e6 + 0.2*float64(10<<20)/2; g.rate != want {
		t.Errorf("rate after one transfer = %v, want %v", g.rate, want)
	}
	g.measured(100, time.Millisecond) // too small to count
	if want := 0.8e6 + 0.2*float64(10<<20)/2; g.rate != want {
		t.Errorf("a small transfer moved the rate to %v", g.rate)
	}
}
