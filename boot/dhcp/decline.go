package dhcp

import (
	"context"
	"fmt"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// Bounds on what DECLINE messages can take out of the pool. A DECLINE is
// unauthenticated: anyone on the LAN can send one with any MAC.
const (
	// DeclinesPerMAC is how many addresses one MAC may have quarantined
	// within DeclineHold.
	DeclinesPerMAC = 2
	// maxDeclineMACs bounds the per-MAC memory of the limiter.
	maxDeclineMACs = 4096
)

// declineLimiter remembers, per MAC, when its DECLINEs quarantined an
// address. The server's mutex guards it.
type declineLimiter struct {
	byMAC map[string][]time.Time
}

// allow reports whether mac may quarantine one more address now, and
// records it if so.
func (d *declineLimiter) allow(mac string, now time.Time) bool {
	if d.byMAC == nil {
		d.byMAC = map[string][]time.Time{}
	}
	if len(d.byMAC) >= maxDeclineMACs {
		for m, ts := range d.byMAC {
			if !ts[len(ts)-1].Add(DeclineHold).After(now) {
				delete(d.byMAC, m)
			}
		}
		if len(d.byMAC) >= maxDeclineMACs {
			return false // a flood of MACs: the pool cap decides anyway
		}
	}
	recent := d.byMAC[mac][:0]
	for _, t := range d.byMAC[mac] {
		if t.Add(DeclineHold).After(now) {
			recent = append(recent, t)
		}
	}
	if len(recent) >= DeclinesPerMAC {
		d.byMAC[mac] = recent
		return false
	}
	d.byMAC[mac] = append(recent, now)
	return true
}

// quarantineCap is how many pool addresses may be quarantined at once: a
// quarter of the pool, so DECLINEs never take more than 25% of it.
func (t *leaseTable) quarantineCap() int {
	if t.pool.start > t.pool.end {
		return 0
	}
	return int((t.pool.end - t.pool.start + 1) / 4)
}

// quarantined counts unexpired quarantined pool addresses.
func (t *leaseTable) quarantined(now time.Time) int {
	n := 0
	for _, l := range t.byAddr {
		if l.State == StateDeclined && l.Expiry.After(now) && t.inPool(l.Addr) {
			n++
		}
	}
	return n
}

// decline handles a DECLINE (RFC 2131 4.3.3): the client says the address
// it was given is in use by another machine. It is honoured only from the
// client holding that address's bound lease, naming this server, and never
// for a node of the rack config: anyone can send a DECLINE with a known
// node's MAC, so a known node keeps its lease (an event tells the operator;
// a real address conflict of a known node is fixed with a reservation).
// An honoured DECLINE ends the lease. The address is quarantined for
// DeclineHold only if the MAC has not already quarantined DeclinesPerMAC
// addresses within DeclineHold and quarantined addresses stay within a
// quarter of the pool; otherwise it returns to the pool at once.
func (s *Server) decline(ctx context.Context, x *exchange) {
	if sid := addr4(x.req.ServerIdentifier()); sid != x.st.ServerAddr {
		x.log.Debug("decline not addressed to this server: ignored", "server", sid)
		return
	}
	addr := addr4(x.req.RequestedIPAddress())
	now := s.now()
	s.mu.Lock()
	l := s.table.byMAC[x.mac]
	if l == nil || l.Addr != addr || l.State != StateBound || !l.Expiry.After(now) {
		s.mu.Unlock()
		x.log.Info("decline from a machine that holds no bound lease of that address: ignored", "ip", addr)
		s.emit(x.key, "dhcp.decline-ignored", fmt.Sprintf("%s is not bound to mac %s", addr, x.mac))
		return
	}
	if x.known {
		s.mu.Unlock()
		x.log.Warn("decline naming a known node: its lease is kept (a DECLINE is unauthenticated; give the node a reservation if its address really is in use)", "ip", addr)
		s.emit(x.key, "dhcp.decline-ignored", fmt.Sprintf("%s kept: declines of known nodes are not honoured", addr))
		return
	}
	why := ""
	switch {
	case x.reservedByOther(addr):
		why = "a reserved address is never quarantined"
	case !s.table.inPool(addr):
		why = "outside the pool"
	case s.table.quarantined(now) >= s.table.quarantineCap():
		why = fmt.Sprintf("%d addresses are quarantined already, a quarter of the pool", s.table.quarantined(now))
	case !s.declines.allow(x.mac, now):
		why = fmt.Sprintf("this machine quarantined %d addresses within %s already", DeclinesPerMAC, DeclineHold)
	}
	// The lease ends either way. The address is held for DeclineHold, or
	// for no time at all: an expired record is how the allocator finds an
	// address to hand out again once the pool has been walked.
	s.table.remove(l)
	q := store.Lease{MAC: declinedKey + addr.String(), Addr: addr, Expiry: now, State: StateDeclined}
	if why == "" {
		q.Expiry = now.Add(DeclineHold)
	}
	s.table.put(&q)
	s.mu.Unlock()
	if err := s.Leases.DeleteLease(ctx, x.mac); err != nil {
		x.log.Warn("delete declined lease", "err", err)
	}
	if why != "" {
		x.log.Warn("client declined its address: lease ended, address not quarantined", "ip", addr, "reason", why)
		s.emit(x.key, "dhcp.decline-limited", fmt.Sprintf("%s back in the pool: %s", addr, why))
		return
	}
	x.log.Warn("client declined its address (in use by another machine?): quarantined", "ip", addr, "until", q.Expiry)
	if err := s.Leases.PutLease(ctx, q); err != nil {
		x.log.Warn("persist declined address", "ip", addr, "err", err)
	}
}
