package dhcp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklet/racklet-boot/store"
)

// full answers a request in full mode: addresses and, for boot clients the
// policy lets boot, boot options.
func (s *Server) full(ctx context.Context, x *exchange) *dhcpv4.DHCPv4 {
	if s.Leases == nil {
		x.log.Error("dhcp full mode without a lease store: request dropped")
		return nil
	}
	switch x.req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		return s.discover(x)
	case dhcpv4.MessageTypeRequest:
		return s.request(ctx, x)
	case dhcpv4.MessageTypeDecline:
		s.decline(ctx, x)
	case dhcpv4.MessageTypeRelease:
		s.release(ctx, x)
	case dhcpv4.MessageTypeInform:
		r := x.reply(dhcpv4.MessageTypeAck)
		r.ClientIPAddr = x.req.ClientIPAddr
		x.addrOptions(r, 0)
		x.bootOptions(r)
		return r
	default:
		x.log.Debug("dhcp message type not served: dropped", "peer", x.peer)
	}
	return nil
}

// reservation is the known node's static address, when it is usable here.
func (x *exchange) reservation() netip.Addr {
	if x.known && x.node.Address.Is4() && x.st.Subnet.Contains(x.node.Address) {
		return x.node.Address
	}
	return netip.Addr{}
}

// reservedByOther reports addresses the pool must not give x's client:
// the server's and router's own, the subnet's edges, other nodes' reservations.
func (x *exchange) reservedByOther(a netip.Addr) bool {
	if a == x.st.ServerAddr || a == x.st.Router || a == x.st.Subnet.Addr() || !x.st.Subnet.Contains(a) {
		return true
	}
	if bits := x.st.Subnet.Bits(); bits < 31 && u32(a)|(1<<(32-bits)-1) == u32(a) {
		return true // broadcast address
	}
	if x.st.Inventory != nil {
		if n, ok := x.st.Inventory.NodeByAddr(a); ok && (!x.known || n.Name != x.node.Name) {
			return true
		}
	}
	return false
}

func (s *Server) discover(x *exchange) *dhcpv4.DHCPv4 {
	now := s.now()
	s.mu.Lock()
	addr, err := s.chooseAddr(x, now)
	if err != nil {
		s.mu.Unlock()
		x.log.Warn("no address to offer", "err", err)
		return nil
	}
	if l := s.table.byMAC[x.mac]; l == nil || l.Addr != addr || l.State != StateBound || !l.Expiry.After(now) {
		s.table.assign(store.Lease{MAC: x.mac, Addr: addr, Node: x.node.Name, Hostname: x.c.Hostname,
			Expiry: now.Add(OfferHold), State: StateOffered})
	}
	s.mu.Unlock()
	r := x.reply(dhcpv4.MessageTypeOffer)
	r.YourIPAddr = net.IP(addr.AsSlice())
	x.addrOptions(r, x.st.LeaseTime)
	x.bootOptions(r)
	return r
}

// chooseAddr picks the address to offer; the caller holds s.mu.
func (s *Server) chooseAddr(x *exchange, now time.Time) (netip.Addr, error) {
	if res := x.reservation(); res.IsValid() {
		if h := s.table.holder(res, now); h == nil || h.MAC == x.mac {
			return res, nil
		}
		x.log.Warn("reserved address is leased to another machine: offering a pool address until that lease ends",
			"reserved", res, "holder", s.table.byAddr[res].MAC)
	}
	requested := addr4(x.req.RequestedIPAddress())
	return s.table.pick(x.mac, requested, now, x.reservedByOther)
}

func (s *Server) request(ctx context.Context, x *exchange) *dhcpv4.DHCPv4 {
	sid := addr4(x.req.ServerIdentifier())
	var addr netip.Addr
	switch {
	case sid.IsValid():
		if sid != x.st.ServerAddr {
			s.mu.Lock()
			if l := s.table.byMAC[x.mac]; l != nil && l.State == StateOffered {
				s.table.remove(l)
			}
			s.mu.Unlock()
			x.log.Debug("client chose another dhcp server", "server", sid)
			return nil
		}
		addr = addr4(x.req.RequestedIPAddress())
	case addr4(x.req.ClientIPAddr).IsValid():
		addr = addr4(x.req.ClientIPAddr)
	default:
		addr = addr4(x.req.RequestedIPAddress())
	}
	if !addr.IsValid() {
		return x.nak("request names no address")
	}
	if !x.st.Subnet.Contains(addr) {
		return x.nak(fmt.Sprintf("%s is outside subnet %s", addr, x.st.Subnet))
	}
	now := s.now()
	s.mu.Lock()
	l := s.table.byMAC[x.mac]
	res := x.reservation()
	var why string
	switch h := s.table.holder(addr, now); {
	case h != nil && h.MAC != x.mac:
		why = fmt.Sprintf("%s is leased to another machine", addr)
	case x.reservedByOther(addr):
		why = fmt.Sprintf("%s is reserved", addr)
	case res.IsValid() && addr != res && s.table.holder(res, now) == nil:
		why = fmt.Sprintf("this machine's address is %s", res)
	case l != nil && l.Addr == addr && l.State != StateDeclined:
	case addr == res, sid.IsValid() && s.table.inPool(addr):
		// Our own offer or reservation, or one we lost in a restart.
	case l != nil:
		why = fmt.Sprintf("this machine's lease is %s", l.Addr)
	default:
		// RFC 2131 4.3.2: no record of the client, stay silent.
		s.mu.Unlock()
		x.log.Debug("request for an address this server has no record of: ignored", "addr", addr)
		return nil
	}
	if why != "" {
		s.mu.Unlock()
		return x.nak(why)
	}
	nl := store.Lease{MAC: x.mac, Addr: addr, Node: x.node.Name, Hostname: x.c.Hostname,
		Expiry: now.Add(x.st.LeaseTime), State: StateBound}
	var prev *store.Lease
	if l != nil {
		p := *l
		prev = &p
	}
	displaced := s.table.assign(nl)
	s.mu.Unlock()
	if err := s.Leases.PutLease(ctx, nl); err != nil {
		s.mu.Lock()
		if cur := s.table.byMAC[x.mac]; cur != nil && *cur == nl {
			s.table.remove(cur)
			if prev != nil && s.table.byAddr[prev.Addr] == nil {
				s.table.put(prev)
			}
		}
		if displaced != "" {
			s.table.stale[addr] = displaced
		}
		s.mu.Unlock()
		x.log.Error("persist lease failed: no ACK sent", "addr", addr, "err", err)
		return nil
	}
	if displaced != "" {
		if err := s.Leases.DeleteLease(ctx, displaced); err != nil {
			x.log.Warn("delete replaced lease", "mac", displaced, "err", err)
		}
	}
	s.recordNode(store.Node{Key: x.key, Name: x.node.Name, MAC: x.mac, Serial: x.c.Serial, Kind: x.c.Kind(),
		Arch: x.c.Arch, Addr: addr.String(), LastSeen: now, Known: x.known})
	r := x.reply(dhcpv4.MessageTypeAck)
	r.YourIPAddr = net.IP(addr.AsSlice())
	r.ClientIPAddr = x.req.ClientIPAddr
	x.addrOptions(r, x.st.LeaseTime)
	x.bootOptions(r)
	return r
}

func (x *exchange) nak(why string) *dhcpv4.DHCPv4 {
	x.log.Info("dhcp request refused (NAK)", "reason", why)
	r := x.reply(dhcpv4.MessageTypeNak)
	r.Options.Update(dhcpv4.OptMessage(why))
	return r
}

func (s *Server) decline(ctx context.Context, x *exchange) {
	if sid := addr4(x.req.ServerIdentifier()); sid.IsValid() && sid != x.st.ServerAddr {
		return
	}
	addr := addr4(x.req.RequestedIPAddress())
	now := s.now()
	s.mu.Lock()
	l := s.table.byMAC[x.mac]
	if l == nil || l.Addr != addr {
		s.mu.Unlock()
		x.log.Debug("decline for an address not leased to this machine: ignored", "addr", addr)
		return
	}
	q := store.Lease{MAC: declinedKey + addr.String(), Addr: addr, Expiry: now.Add(DeclineHold), State: StateDeclined}
	s.table.remove(l)
	s.table.put(&q)
	s.mu.Unlock()
	x.log.Warn("client declined its address (in use by another machine?): quarantined", "addr", addr, "until", q.Expiry)
	if err := s.Leases.PutLease(ctx, q); err != nil {
		x.log.Warn("persist declined address", "addr", addr, "err", err)
	}
	if err := s.Leases.DeleteLease(ctx, x.mac); err != nil {
		x.log.Warn("delete declined lease", "err", err)
	}
}

func (s *Server) release(ctx context.Context, x *exchange) {
	if sid := addr4(x.req.ServerIdentifier()); sid.IsValid() && sid != x.st.ServerAddr {
		return
	}
	addr := addr4(x.req.ClientIPAddr)
	now := s.now()
	s.mu.Lock()
	l := s.table.byMAC[x.mac]
	if l == nil || l.Addr != addr || l.State != StateBound {
		s.mu.Unlock()
		x.log.Debug("release for an address not leased to this machine: ignored", "addr", addr)
		return
	}
	// Keep the record, expired, so this machine gets the address back first.
	l.Expiry = now
	s.mu.Unlock()
	x.log.Info("lease released", "addr", addr)
	if err := s.Leases.DeleteLease(ctx, x.mac); err != nil {
		x.log.Warn("delete released lease", "err", err)
	}
}

// addrOptions writes the network options; lease 0 means none (INFORM).
func (x *exchange) addrOptions(r *dhcpv4.DHCPv4, lease time.Duration) {
	r.Options.Update(dhcpv4.OptSubnetMask(net.CIDRMask(x.st.Subnet.Bits(), 32)))
	if x.st.Router.Is4() {
		r.Options.Update(dhcpv4.OptRouter(net.IP(x.st.Router.AsSlice())))
	}
	if len(x.st.DNS) > 0 {
		ips := make([]net.IP, 0, len(x.st.DNS))
		for _, d := range x.st.DNS {
			if d.Is4() {
				ips = append(ips, net.IP(d.AsSlice()))
			}
		}
		r.Options.Update(dhcpv4.OptDNS(ips...))
	}
	if x.st.Domain != "" {
		r.Options.Update(dhcpv4.OptDomainName(x.st.Domain))
	}
	if lease > 0 {
		r.Options.Update(dhcpv4.OptIPAddressLeaseTime(lease))
		r.Options.Update(dhcpv4.OptRenewTimeValue(lease / 2))
		r.Options.Update(dhcpv4.OptRebindingTimeValue(lease * 7 / 8))
	}
}

// bootOptions adds the boot answer when the client boots and may.
func (x *exchange) bootOptions(r *dhcpv4.DHCPv4) {
	if !x.bootOK {
		return
	}
	if bf, ok := chooseBoot(x.st, x.c, x.efi); ok {
		applyBoot(r, x.st, x.c, bf)
	}
}
