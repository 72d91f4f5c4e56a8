package tftp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// TestSlotQueueOrder checks who gets a freed slot: the client seen first,
// unless someone has waited past QueueAging, oldest first.
func TestSlotQueueOrder(t *testing.T) {
	t0 := time.Unix(1000, 0)
	mk := func(name string, firstSeen, queued time.Duration) *xfer {
		return &xfer{res: result{File: name}, firstSeen: t0.Add(firstSeen), queuedAt: t0.Add(queued), queueI: -1}
	}
	tests := map[string]struct {
		waiters []*xfer
		now     time.Duration
		want    []string
	}{
		"first-seen client first": {
			waiters: []*xfer{mk("late", 5*time.Second, 6*time.Second), mk("early", 0, 7*time.Second), mk("mid", 2*time.Second, 6*time.Second)},
			now:     8 * time.Second,
			want:    []string{"early", "mid", "late"},
		},
		"same client: queued first": {
			waiters: []*xfer{mk("b", 0, 2*time.Second), mk("a", 0, time.Second)},
			now:     3 * time.Second,
			want:    []string{"a", "b"},
		},
		"aged waiter goes ahead": {
			waiters: []*xfer{mk("early", 0, 11*time.Second), mk("aged", 9*time.Second, 0), mk("aged-later", 8*time.Second, time.Second)},
			now:     12 * time.Second,
			want:    []string{"aged", "aged-later", "early"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			q := slotQueue{max: 1, aging: 10 * time.Second}
			if !q.take() {
				t.Fatal("an empty queue gave no slot")
			}
			for _, x := range tc.waiters {
				q.push(x)
			}
			if q.take() {
				t.Fatal("took a slot past max")
			}
			var got []string
			for range tc.waiters {
				if x := q.next(t0.Add(tc.now)); x != nil {
					t.Fatalf("granted %s while the slot is taken", x.res.File)
				}
				q.active-- // the running transfer ends
				x := q.next(t0.Add(tc.now))
				if x == nil {
					t.Fatal("no waiter granted a free slot")
				}
				got = append(got, x.res.File)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("grant order (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSlotQueueRemove(t *testing.T) {
	q := slotQueue{max: 1, aging: time.Second}
	xs := []*xfer{{queueI: -1}, {queueI: -1}, {queueI: -1}}
	for _, x := range xs {
		q.push(x)
	}
	q.remove(xs[0])
	q.remove(xs[0]) // twice: no effect
	if len(q.waiting) != 2 || xs[0].queueI != -1 {
		t.Fatalf("after remove: %d waiting, index %d", len(q.waiting), xs[0].queueI)
	}
	for i, x := range q.waiting {
		if x.queueI != i {
			t.Errorf("waiter at %d has index %d", i, x.queueI)
		}
	}
}
