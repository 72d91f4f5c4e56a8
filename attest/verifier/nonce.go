package verifier

import (
	"errors"
	"time"
)

// Nonce errors.
var (
	ErrNonceUnknown = errors.New("nonce unknown or already used: ask for a fresh challenge")
	ErrNonceExpired = errors.New("nonce expired: ask for a fresh challenge and quote promptly")
	ErrNonceNode    = errors.New("nonce was issued to another node")
)

type nonceEntry struct {
	node    string
	expires time.Time
}

// nonceTable holds issued, unused nonces. It is bounded: past max entries
// the oldest are evicted (a node holding one must ask again). The caller
// holds the verifier's lock.
type nonceTable struct {
	m     map[[32]byte]nonceEntry
	order [][32]byte // issue order; may hold already-used nonces
}

func (t *nonceTable) add(n [32]byte, node string, expires, now time.Time, max int) {
	if t.m == nil {
		t.m = map[[32]byte]nonceEntry{}
	}
	// Drop used or expired nonces from the front, then evict past the bound.
	for len(t.order) > 0 {
		e, live := t.m[t.order[0]]
		if live && now.Before(e.expires) && len(t.m) < max {
			break
		}
		delete(t.m, t.order[0])
		t.order = t.order[1:]
	}
	if len(t.order) > 2*max+16 { // compact the used entries in the middle
		kept := t.order[:0]
		for _, k := range t.order {
			if _, ok := t.m[k]; ok {
				kept = append(kept, k)
			}
		}
		t.order = kept
	}
	t.m[n] = nonceEntry{node: node, expires: expires}
	t.order = append(t.order, n)
}

// take consumes a nonce: it is gone after this call whatever the result.
func (t *nonceTable) take(n [32]byte, node string, now time.Time) error {
	e, ok := t.m[n]
	if !ok {
		return ErrNonceUnknown
	}
	delete(t.m, n)
	switch {
	case !now.Before(e.expires):
		return ErrNonceExpired
	case e.node != node:
		return ErrNonceNode
	}
	return nil
}

func (t *nonceTable) len() int { return len(t.m) }
