// Package ratelimit bounds how often one client address may do something:
// fixed windows per address, in a map that never grows past MaxClients
// (past it the counts start over, which only forgets, never blocks). The
// node API, the attestation API and the dashboard login share it.
package ratelimit

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// MaxClients bounds the addresses a Window remembers.
const MaxClients = 4096

// Window allows Limit events per client address in each Per.
type Window struct {
	Limit int
	Per   time.Duration

	mu sync.Mutex
	m  map[netip.Addr]*count
}

type count struct {
	start time.Time
	n     int
}

// New is a window of limit events per per.
func New(limit int, per time.Duration) *Window { return &Window{Limit: limit, Per: per} }

// Allow counts one event from a at now; false past the limit.
func (w *Window) Allow(a netip.Addr, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil || len(w.m) >= MaxClients {
		w.m = map[netip.Addr]*count{}
	}
	c := w.m[a]
	if c == nil || now.Sub(c.start) >= w.Per {
		c = &count{start: now}
		w.m[a] = c
	}
	c.n++
	return c.n <= w.Limit
}

// ClientAddr is a request's TCP peer address (forwarding headers are never
// trusted); the zero Addr when it has none.
func ClientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
