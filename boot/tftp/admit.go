package tftp

import (
	"net/netip"
	"sync"
	"time"
)

// Why a request was not admitted.
const (
	admitOK         = ""
	admitDuplicate  = "duplicate"   // the client port already has a transfer of this file: a retransmitted RRQ
	admitServerFull = "server_full" // MaxTransfers reached
	admitClientFull = "client_full" // MaxPerClient reached for this address
)

// clientMemory is how long a client's first-seen time outlives its last
// transfer, so that a node's next read keeps its place in the queue.
const clientMemory = 2 * time.Minute

// limiter bounds open transfers (sending, queued or in the handshake) in
// total and per client address, drops a second request for the same file
// from a client port that already has a transfer of it (a retransmitted
// RRQ; another name from the same port is a new request from a reused
// port), and remembers when each client was
// first seen, which orders the send queue. The dispatcher and the loop
// share it.
type limiter struct {
	mu       sync.Mutex
	maxTotal int
	maxPer   int
	total    int
	clients  map[netip.Addr]*clientEntry
	peers    map[netip.AddrPort]string // file of the transfer open for each client port
	sweepAt  int
}

type clientEntry struct {
	n     int       // open transfers
	first time.Time // first request of this run of requests
	last  time.Time // last transfer ended
}

func newLimiter(maxTotal, maxPer int) *limiter {
	return &limiter{
		maxTotal: maxTotal, maxPer: maxPer,
		clients: make(map[netip.Addr]*clientEntry), peers: make(map[netip.AddrPort]string),
		sweepAt: 64,
	}
}

// acquire admits a transfer of file for peer, returning when its client
// was first seen, or the reason it is refused.
func (l *limiter) acquire(peer netip.AddrPort, file string, now time.Time) (time.Time, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, open := l.peers[peer]; open && f == file {
		return time.Time{}, admitDuplicate
	}
	c := l.clients[peer.Addr()]
	switch {
	case l.total >= l.maxTotal:
		return time.Time{}, admitServerFull
	case c != nil && c.n >= l.maxPer:
		return time.Time{}, admitClientFull
	}
	if c == nil {
		if len(l.clients) >= l.sweepAt {
			l.sweep(now)
		}
		c = &clientEntry{first: now}
		l.clients[peer.Addr()] = c
	} else if c.n == 0 && now.Sub(c.last) > clientMemory {
		c.first = now
	}
	c.n++
	l.total++
	l.peers[peer] = file
	return c.first, admitOK
}

// release ends a transfer of file admitted by acquire.
func (l *limiter) release(peer netip.AddrPort, file string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.peers[peer] == file {
		delete(l.peers, peer)
	}
	l.total--
	if c := l.clients[peer.Addr()]; c != nil {
		c.n--
		c.last = now
	}
}

// sweep forgets idle clients past clientMemory; it runs when the map has
// doubled since the last sweep, so its cost is spread over the inserts.
func (l *limiter) sweep(now time.Time) {
	for a, c := range l.clients {
		if c.n == 0 && now.Sub(c.last) > clientMemory {
			delete(l.clients, a)
		}
	}
	l.sweepAt = max(64, 2*len(l.clients))
}

func (l *limiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// slotQueue hands out the MaxActive send slots. A transfer asks for one
// once its client has acknowledged the first packet (so a client that
// never answers never holds one); when none is free it waits. Waiters are
// served in order of their client's first request, so the nodes that
// started first finish first and leave, instead of every node slowing down
// together; a transfer that has waited QueueAging goes ahead of every
// younger one, oldest first, so no node starves. Only the loop uses it.
type slotQueue struct {
	max     int
	aging   time.Duration
	active  int
	waiting []*xfer
}

// take gives a slot at once when one is free and nobody waits.
func (q *slotQueue) take() bool {
	if q.active < q.max && len(q.waiting) == 0 {
		q.active++
		return true
	}
	return false
}

// push adds x to the waiters.
func (q *slotQueue) push(x *xfer) {
	x.queueI = len(q.waiting)
	q.waiting = append(q.waiting, x)
}

// remove takes x out of the waiters, if it is there.
func (q *slotQueue) remove(x *xfer) {
	i := x.queueI
	if i < 0 || i >= len(q.waiting) || q.waiting[i] != x {
		return
	}
	last := len(q.waiting) - 1
	q.waiting[i] = q.waiting[last]
	q.waiting[i].queueI = i
	q.waiting[last] = nil
	q.waiting = q.waiting[:last]
	x.queueI = -1
}

// next returns the waiter to run now, with a slot taken for it, or nil.
func (q *slotQueue) next(now time.Time) *xfer {
	if q.active >= q.max || len(q.waiting) == 0 {
		return nil
	}
	best := q.waiting[0]
	for _, x := range q.waiting[1:] {
		if q.before(x, best, now) {
			best = x
		}
	}
	q.remove(best)
	q.active++
	return best
}

// before reports whether a goes ahead of b.
func (q *slotQueue) before(a, b *xfer, now time.Time) bool {
	agedA, agedB := now.Sub(a.queuedAt) >= q.aging, now.Sub(b.queuedAt) >= q.aging
	switch {
	case agedA != agedB:
		return agedA
	case agedA || a.firstSeen.Equal(b.firstSeen):
		return a.queuedAt.Before(b.queuedAt)
	}
	return a.firstSeen.Before(b.firstSeen)
}
