package verifier

import (
	"errors"
	"net/netip"
	"slices"
	"time"
)

// Nonce errors.
var (
	ErrNonceUnknown = errors.New("nonce unknown or already used: ask for a fresh challenge")
	ErrNonceExpired = errors.New("nonce expired: ask for a fresh challenge and quote promptly")
	ErrNonceNode    = errors.New("nonce was issued to another node")
	ErrNonceFull    = errors.New("too many outstanding challenges: try again in a minute")
)

// noncesPerClient bounds the unused nonces one client address holds for
// one node.
const noncesPerClient = 2

type nonceEntry struct {
	n       [32]byte
	from    netip.Addr
	expires time.Time
}

// nonceTable holds issued, unused nonces per node, in issue order. It is
// bounded per client and node, per node, and in all; the caller holds the
// verifier's lock.
type nonceTable struct {
	byNode map[string][]nonceEntry
	owner  map[[32]byte]string // nonce → node
}

// add records n for node, issued to from; home is the address the node is
// known to be at (zero when unknown). Expired nonces of the node go first;
// then the client's oldest past noncesPerClient, then, past perNode, the
// oldest of the client other than home holding the most. Past max in all
// it refuses (never evicting another node's).
func (t *nonceTable) add(n [32]byte, node string, from, home netip.Addr, expires, now time.Time, max, perNode int) error {
	if t.byNode == nil {
		t.byNode, t.owner = map[string][]nonceEntry{}, map[[32]byte]string{}
	}
	list := t.byNode[node]
	list = slices.DeleteFunc(list, func(e nonceEntry) bool {
		if now.Before(e.expires) {
			return false
		}
		delete(t.owner, e.n)
		return true
	})
	if held := countFrom(list, from); held >= noncesPerClient {
		list = t.drop(list, from)
	} else if len(list) >= perNode {
		list = t.drop(list, busiest(list, home))
	}
	if len(t.owner) >= max {
		t.sweep(now)
		if len(t.owner) >= max {
			t.byNode[node] = list
			return ErrNonceFull
		}
	}
	t.byNode[node] = append(list, nonceEntry{n: n, from: from, expires: expires})
	t.owner[n] = node
	return nil
}

// drop removes the oldest nonce list holds from addr.
func (t *nonceTable) drop(list []nonceEntry, addr netip.Addr) []nonceEntry {
	i := slices.IndexFunc(list, func(e nonceEntry) bool { return e.from == addr })
	if i < 0 {
		return list
	}
	delete(t.owner, list[i].n)
	return slices.Delete(list, i, i+1)
}

// sweep drops every expired nonce.
func (t *nonceTable) sweep(now time.Time) {
	for node, list := range t.byNode {
		list = slices.DeleteFunc(list, func(e nonceEntry) bool {
			if now.Before(e.expires) {
				return false
			}
			delete(t.owner, e.n)
			return true
		})
		if len(list) == 0 {
			delete(t.byNode, node)
		} else {
			t.byNode[node] = list
		}
	}
}

func countFrom(list []nonceEntry, addr netip.Addr) int {
	n := 0
	for _, e := range list {
		if e.from == addr {
			n++
		}
	}
	return n
}

// busiest is the client address other than home holding the most of list
// (the earliest issued among ties).
func busiest(list []nonceEntry, home netip.Addr) netip.Addr {
	var best netip.Addr
	most := 0
	for _, e := range list {
		if home.IsValid() && e.from == home {
			continue
		}
		if c := countFrom(list, e.from); c > most {
			best, most = e.from, c
		}
	}
	return best
}

// take consumes a nonce: it is gone after this call whatever the result.
func (t *nonceTable) take(n [32]byte, node string, now time.Time) error {
	owner, ok := t.owner[n]
	if !ok {
		return ErrNonceUnknown
	}
	delete(t.owner, n)
	list := t.byNode[owner]
	i := slices.IndexFunc(list, func(e nonceEntry) bool { return e.n == n })
	e := list[i]
	if list = slices.Delete(list, i, i+1); len(list) == 0 {
		delete(t.byNode, owner)
	} else {
		t.byNode[owner] = list
	}
	switch {
	case !now.Before(e.expires):
		return ErrNonceExpired
	case owner != node:
		return ErrNonceNode
	}
	return nil
}

func (t *nonceTable) len() int { return len(t.owner) }
