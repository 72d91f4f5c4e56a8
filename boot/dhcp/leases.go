package dhcp

import (
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// Lease states as stored in store.Lease.State.
const (
	StateOffered  = "offered"  // held between OFFER and REQUEST, in memory only
	StateBound    = "bound"    // acknowledged and persisted
	StateDeclined = "declined" // reported in use by a client; quarantined until Expiry
)

// Hold times.
const (
	// OfferHold is how long an offered address stays held for its client.
	OfferHold = 30 * time.Second
	// DeclineHold is how long a declined address stays out of the pool.
	DeclineHold = 10 * time.Minute
)

// declinedKey is the store key of a quarantined address: the store keys
// leases by MAC, and a declined address belongs to no client.
const declinedKey = store.DeclinedPrefix

// ErrPoolExhausted means no pool address is free, expired or stealable.
var ErrPoolExhausted = errors.New("dhcp pool exhausted: every address is bound")

// leaseTable is the allocator state. The server's mutex guards it.
type leaseTable struct {
	byMAC  map[string]*store.Lease
	byAddr map[netip.Addr]*store.Lease
	cursor uint32 // next never-handed-out pool address to try
	pool   poolRange
	// stale maps an address offered to a new client to the MAC whose
	// persisted (expired) lease still names it, to delete once bound.
	stale map[netip.Addr]string
}

type poolRange struct{ start, end uint32 } // inclusive; start > end means empty

func newLeaseTable() *leaseTable {
	return &leaseTable{byMAC: map[string]*store.Lease{}, byAddr: map[netip.Addr]*store.Lease{}, stale: map[netip.Addr]string{}}
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addrOf(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// setPool points the allocator at a (possibly new) pool. Leases outside it
// stay: bound ones are honoured until they expire.
func (t *leaseTable) setPool(s *Settings) {
	t.pool = poolRange{start: 1, end: 0}
	if s.Pool != nil && s.Pool.Start.Is4() && s.Pool.End.Is4() && u32(s.Pool.Start) <= u32(s.Pool.End) {
		t.pool = poolRange{start: u32(s.Pool.Start), end: u32(s.Pool.End)}
	}
	t.cursor = t.pool.start
}

func (t *leaseTable) inPool(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	v := u32(a)
	return v >= t.pool.start && v <= t.pool.end
}

// load restores persisted leases; of two leases for one address the later
// expiry wins.
func (t *leaseTable) load(ls []store.Lease) {
	for i := range ls {
		l := ls[i]
		if !l.Addr.Is4() || (l.State != StateBound && l.State != StateDeclined) {
			continue
		}
		if old, ok := t.byAddr[l.Addr]; ok {
			if !l.Expiry.After(old.Expiry) {
				continue
			}
			t.remove(old)
		}
		if old, ok := t.byMAC[l.MAC]; ok && !strings.HasPrefix(l.MAC, declinedKey) {
			if !l.Expiry.After(old.Expiry) {
				continue
			}
			t.remove(old)
		}
		t.put(&l)
	}
}

func (t *leaseTable) put(l *store.Lease) {
	t.byAddr[l.Addr] = l
	if !strings.HasPrefix(l.MAC, declinedKey) {
		t.byMAC[l.MAC] = l
	}
}

func (t *leaseTable) remove(l *store.Lease) {
	if t.byAddr[l.Addr] == l {
		delete(t.byAddr, l.Addr)
	}
	if t.byMAC[l.MAC] == l {
		delete(t.byMAC, l.MAC)
	}
}

// holder returns the lease holding addr now (nil when free or expired).
func (t *leaseTable) holder(a netip.Addr, now time.Time) *store.Lease {
	l := t.byAddr[a]
	if l == nil || !l.Expiry.After(now) {
		return nil
	}
	return l
}

// usable reports whether mac may take addr now.
func (t *leaseTable) usable(a netip.Addr, mac string, now time.Time, reservedByOther func(netip.Addr) bool) bool {
	if h := t.holder(a, now); h != nil && h.MAC != mac {
		return false
	}
	return !reservedByOther(a)
}

// pick chooses an address for mac: its own lease, the requested address,
// a never-used pool address, the oldest expired one, then the oldest offer
// held for another client.
func (t *leaseTable) pick(mac string, requested netip.Addr, now time.Time, skip func(netip.Addr) bool) (netip.Addr, error) {
	if l := t.byMAC[mac]; l != nil && l.State != StateDeclined {
		if (t.inPool(l.Addr) || (l.State == StateBound && l.Expiry.After(now))) && t.usable(l.Addr, mac, now, skip) {
			return l.Addr, nil
		}
	}
	if t.inPool(requested) && t.usable(requested, mac, now, skip) {
		return requested, nil
	}
	if t.pool.start > t.pool.end {
		return netip.Addr{}, ErrPoolExhausted
	}
	for t.cursor >= t.pool.start && t.cursor <= t.pool.end {
		a := addrOf(t.cursor)
		t.cursor++
		if t.cursor == 0 { // wrapped at 255.255.255.255
			t.cursor = t.pool.end + 1
		}
		if _, used := t.byAddr[a]; !used && !skip(a) {
			return a, nil
		}
	}
	var expired, offered *store.Lease
	for _, l := range t.byAddr {
		if !t.inPool(l.Addr) || skip(l.Addr) {
			continue
		}
		if !l.Expiry.After(now) {
			if expired == nil || l.Expiry.Before(expired.Expiry) {
				expired = l
			}
		} else if l.State == StateOffered && l.MAC != mac {
			if offered == nil || l.Expiry.Before(offered.Expiry) {
				offered = l
			}
		}
	}
	if expired != nil {
		return expired.Addr, nil
	}
	if offered != nil {
		return offered.Addr, nil
	}
	return netip.Addr{}, ErrPoolExhausted
}

// assign records l as mac's lease. For a bound l it returns the MAC whose
// persisted lease named the address before (to delete from the store), or "".
func (t *leaseTable) assign(l store.Lease) (displaced string) {
	if old := t.byAddr[l.Addr]; old != nil && old.MAC != l.MAC {
		t.remove(old)
		if old.State != StateOffered {
			t.stale[l.Addr] = old.MAC
		}
	}
	if l.State == StateBound {
		if m, ok := t.stale[l.Addr]; ok {
			delete(t.stale, l.Addr)
			if m != l.MAC {
				displaced = m
			}
		}
	}
	if old := t.byMAC[l.MAC]; old != nil {
		t.remove(old)
	}
	t.put(&l)
	return displaced
}

// outstanding counts unexpired leases per state.
func (t *leaseTable) outstanding(now time.Time) map[string]int {
	m := map[string]int{}
	for _, l := range t.byAddr {
		if l.Expiry.After(now) {
			m[l.State]++
		}
	}
	return m
}
