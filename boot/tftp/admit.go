package tftp

import (
	"net/netip"
	"slices"
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

// gate admits nodes (client addresses) to be served: at most max at once,
// so that under a storm some nodes boot at full speed and leave instead of
// every node crawling past the firmware's per-file timeout together.
//
//   - A request from an admitted node is served at once. A request from
//     another node is served at once, admitting the node, while there is
//     room and nobody waits; else it is held, unanswered (the client
//     retransmits its RRQ; rule 2 of docs/tftp.md drops the copies).
//   - A request is held at most as long as its file can still arrive within
//     the client's per-file budget at the rate admitted nodes get now (see
//     holdFor), and never longer than maxHold; then it is served anyway,
//     without admitting its node. Small files and misses can wait long, a
//     kernel briefly, and a waiting node moves on one request at a time.
//   - When a node leaves (no open transfer for linger), the node whose held
//     request is closest to the end of its hold is admitted and all its
//     held requests are served (earliest deadline first; nodes of the rack
//     config before unknown clients; the first-seen client first on a tie).
//   - Admission needs a live client: an admitted node none of whose
//     transfers has been acknowledged within answerWithin of its first
//     packet loses its place, so clients that never answer cannot hold the
//     gate.
//
// Only the loop uses it.
type gate struct {
	max      int
	maxHold  time.Duration
	budget   time.Duration // the client's time for a whole file
	linger   time.Duration
	rate     float64 // bytes per second an admitted transfer gets, smoothed
	admitted int
	nodes    map[netip.Addr]*node
	held     []*xfer
	lingerAt time.Time // earliest end of a lingering admission; zero: none
}

// initialRate is the transfer rate assumed before any big transfer was
// measured: a lock-step transfer under a storm, conservatively.
const initialRate = 1e6

// rateMinBytes is the smallest transfer that updates the measured rate.
const rateMinBytes = 1 << 20

// node is the gate's view of one client address.
type node struct {
	addr      netip.Addr
	first     time.Time // the client's first request (limiter)
	open      int       // transfers in the loop, held included
	answered  int       // open transfers the client has acknowledged
	admitted  bool
	idleSince time.Time // when open fell to 0 (admitted nodes linger)
}

func newGate(max int, maxHold, budget, linger time.Duration) *gate {
	return &gate{max: max, maxHold: maxHold, budget: budget, linger: linger, rate: initialRate, nodes: make(map[netip.Addr]*node)}
}

// holdFor is how long a request for size bytes may be held: three quarters
// of the client's budget for the file less the time the file takes at the
// measured rate, between 0 and maxHold.
func (g *gate) holdFor(size int64) time.Duration {
	d := g.budget*3/4 - time.Duration(float64(max(size, 0))/g.rate*float64(time.Second))
	return min(max(d, 0), g.maxHold)
}

// measured folds a finished transfer's rate into the estimate.
func (g *gate) measured(bytes int64, took time.Duration) {
	if bytes < rateMinBytes || took <= 0 {
		return
	}
	r := float64(bytes) / took.Seconds()
	g.rate = 0.8*g.rate + 0.2*r
}

// enter registers x with its node and reports whether x may start now;
// otherwise the caller holds it.
func (g *gate) enter(x *xfer) bool {
	a := x.peer.Addr()
	n := g.nodes[a]
	if n == nil {
		n = &node{addr: a, first: x.firstSeen}
		g.nodes[a] = n
	}
	n.open++
	x.node = n
	if n.admitted {
		return true
	}
	if g.admitted < g.max && len(g.held) == 0 {
		g.admit(n)
		return true
	}
	return false
}

func (g *gate) admit(n *node) {
	n.admitted = true
	g.admitted++
}

func (g *gate) demote(n *node) {
	if n.admitted {
		n.admitted = false
		g.admitted--
	}
}

// holdX adds x to the held requests.
func (g *gate) holdX(x *xfer) {
	x.heldI = len(g.held)
	g.held = append(g.held, x)
}

// unhold takes x out of the held requests, if it is there.
func (g *gate) unhold(x *xfer) {
	i := x.heldI
	if i < 0 || i >= len(g.held) || g.held[i] != x {
		return
	}
	last := len(g.held) - 1
	g.held[i] = g.held[last]
	g.held[i].heldI = i
	g.held[last] = nil
	g.held = g.held[:last]
	x.heldI = -1
}

// leave unregisters a finished transfer; an admitted node left with no
// transfer starts to linger, another one is forgotten.
func (g *gate) leave(x *xfer, now time.Time) {
	n := x.node
	if n == nil {
		return
	}
	g.unhold(x)
	n.open--
	if x.answered {
		n.answered--
	}
	if n.open > 0 {
		return
	}
	if n.admitted {
		n.idleSince = now
		g.lingerAt = earliest(g.lingerAt, now.Add(g.linger))
		return
	}
	delete(g.nodes, n.addr)
}

// expire ends the admission of nodes idle past linger, when one is due.
func (g *gate) expire(now time.Time) {
	if g.lingerAt.IsZero() || now.Before(g.lingerAt) {
		return
	}
	var next time.Time
	for a, n := range g.nodes {
		if !n.admitted || n.open > 0 {
			continue
		}
		if end := n.idleSince.Add(g.linger); now.Before(end) {
			next = earliest(next, end)
			continue
		}
		g.demote(n)
		delete(g.nodes, a)
	}
	g.lingerAt = next
}

// before reports whether held request a goes ahead of b: a node of the
// rack config before an unknown client, then the earlier end of hold, then
// the client first seen.
func (g *gate) before(a, b *xfer) bool {
	if ka, kb := a.res.Node != "", b.res.Node != ""; ka != kb {
		return ka
	}
	if c := a.holdUntil.Compare(b.holdUntil); c != 0 {
		return c < 0
	}
	return a.node.first.Before(b.node.first)
}

// next returns the node to admit now, with its held requests taken out of
// the line, or nil when the gate is full or nobody waits.
func (g *gate) next() (*node, []*xfer) {
	if g.admitted >= g.max || len(g.held) == 0 {
		return nil, nil
	}
	best := g.held[0]
	for _, x := range g.held[1:] {
		if g.before(x, best) {
			best = x
		}
	}
	n := best.node
	var xs []*xfer
	for i := 0; i < len(g.held); {
		if x := g.held[i]; x.node == n {
			g.unhold(x)
			xs = append(xs, x)
			continue
		}
		i++
	}
	g.admit(n)
	slices.SortFunc(xs, func(a, b *xfer) int { return a.heldAt.Compare(b.heldAt) })
	return n, xs
}
