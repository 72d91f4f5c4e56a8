package dhcp

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklet/racklet-boot/store"
)

// Ports the server listens on.
const (
	ServerPort = 67   // DHCP
	PXEPort    = 4011 // PXE boot server (ProxyDHCP), answered besides 67
)

// exchange is one request being answered.
type exchange struct {
	req    *dhcpv4.DHCPv4
	c      Client
	st     *Settings
	peer   net.Addr
	alt    bool // arrived on port 4011
	mac    string
	node   Node
	known  bool
	efi    string // the node's EFI binary, or the default's for unknown machines
	bootOK bool   // the policy lets this machine boot
	key    string // store.Node key
	log    *slog.Logger
}

// handle parses one packet and returns the encoded reply and where to send
// it, or nil. It never panics on bad input.
func (s *Server) handle(ctx context.Context, data []byte, peer net.Addr, alt bool) ([]byte, net.Addr) {
	req, err := dhcpv4.FromBytes(data)
	if err != nil {
		s.log().Debug("malformed dhcp packet dropped", "peer", peer, "len", len(data), "err", err)
		return nil, nil
	}
	if req.OpCode != dhcpv4.OpcodeBootRequest || len(req.ClientHWAddr) == 0 {
		s.log().Debug("dhcp packet that is not a client request dropped", "peer", peer, "op", req.OpCode)
		return nil, nil
	}
	st := s.settings.Load()
	if st.Mode != ModeFull && st.Mode != ModeProxy {
		return nil, nil
	}
	if !st.ServerAddr.Is4() {
		s.log().Warn("dhcp request dropped: the server address is not set (server.address)", "peer", peer)
		return nil, nil
	}
	if gi := addr4(req.GatewayIPAddr); gi.IsValid() && !st.Subnet.Contains(gi) {
		s.log().Warn("dhcp request relayed from outside the configured subnet dropped",
			"peer", peer, "giaddr", gi, "subnet", st.Subnet, "mac", req.ClientHWAddr)
		return nil, nil
	}
	c := s.recall.apply(req.MessageType(), Classify(req), s.now())
	x := &exchange{req: req, c: c, st: st, peer: peer, alt: alt, mac: req.ClientHWAddr.String()}
	x.log = s.log().With("mac", x.mac, "xid", req.TransactionID.String(), "type", req.MessageType().String())
	if !s.identify(x) {
		return nil, nil
	}
	var r *dhcpv4.DHCPv4
	if st.Mode == ModeProxy || alt {
		r = s.proxy(x)
	} else {
		r = s.full(ctx, x)
	}
	if r == nil {
		return nil, nil
	}
	s.emit(x.key, "dhcp."+eventName(r.MessageType()), detail(r))
	return r.ToBytes(), s.dest(x, r)
}

// identify finds the node and applies the unknown-machine policy; false
// means drop silently.
func (s *Server) identify(x *exchange) bool {
	inv := x.st.Inventory
	if inv != nil && x.c.Serial != "" {
		x.node, x.known = inv.NodeBySerial(x.c.Serial)
	}
	if inv != nil && !x.known {
		x.node, x.known = inv.NodeByMAC(x.c.MAC)
	}
	x.key = "mac:" + x.mac
	if x.known {
		x.key, x.efi, x.bootOK = x.node.Name, x.node.EFI, true
		x.log = x.log.With("node", x.node.Name)
	} else {
		switch x.st.Unknown {
		case UnknownDefault:
			x.efi, x.bootOK = x.st.DefaultEFI, true
		case UnknownDiscover:
		default:
			x.log.Debug("unknown machine ignored", "kind", x.c.Kind(), "serial", x.c.Serial)
			return false
		}
	}
	if x.st.Mode == ModeProxy && !x.c.IsBootClient() {
		return false // ProxyDHCP leaves other machines to the real DHCP server
	}
	x.log.Debug("dhcp request", "kind", x.c.Kind(), "serial", x.c.Serial, "arch", x.c.Arch, "peer", x.peer)
	mt := x.req.MessageType()
	s.emit(x.key, "dhcp."+eventName(mt), requestDetail(x))
	if mt == dhcpv4.MessageTypeDiscover || mt == dhcpv4.MessageTypeRequest || mt == dhcpv4.MessageTypeInform {
		s.recordNode(store.Node{Key: x.key, Name: x.node.Name, MAC: x.mac, Serial: x.c.Serial,
			Kind: x.c.Kind(), Arch: x.c.Arch, LastSeen: s.now(), Known: x.known})
	}
	return true
}

// proxy answers boot clients without touching addresses (ProxyDHCP, and
// any request on port 4011).
func (s *Server) proxy(x *exchange) *dhcpv4.DHCPv4 {
	bf, boots := chooseBoot(x.st, x.c, x.efi)
	if !x.bootOK || !boots {
		return nil
	}
	var mt dhcpv4.MessageType
	switch x.req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		mt = dhcpv4.MessageTypeOffer
		if x.alt {
			mt = dhcpv4.MessageTypeAck
		}
	case dhcpv4.MessageTypeRequest:
		// On port 67 a REQUEST is ours only when the client chose our offer.
		if sid := addr4(x.req.ServerIdentifier()); !x.alt && sid != x.st.ServerAddr {
			return nil
		}
		mt = dhcpv4.MessageTypeAck
	case dhcpv4.MessageTypeInform:
		mt = dhcpv4.MessageTypeAck
	default:
		return nil
	}
	r := x.reply(mt)
	applyBoot(r, x.st, x.c, bf)
	return r
}

// reply starts a reply to x.req of type mt.
func (x *exchange) reply(mt dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	q := x.req
	r := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        q.HWType,
		ClientHWAddr:  q.ClientHWAddr,
		TransactionID: q.TransactionID,
		Flags:         q.Flags,
		ClientIPAddr:  net.IPv4zero.To4(),
		YourIPAddr:    net.IPv4zero.To4(),
		ServerIPAddr:  net.IPv4zero.To4(),
		GatewayIPAddr: q.GatewayIPAddr,
		Options:       dhcpv4.Options{},
	}
	r.Options.Update(dhcpv4.OptMessageType(mt))
	r.Options.Update(dhcpv4.OptServerIdentifier(net.IP(x.st.ServerAddr.AsSlice())))
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionClientIdentifier, dhcpv4.OptionRelayAgentInformation} {
		if v := q.Options.Get(code); v != nil {
			r.Options.Update(dhcpv4.OptGeneric(code, v))
		}
	}
	return r
}

// dest picks where a reply goes (RFC 2131 4.1).
func (s *Server) dest(x *exchange, r *dhcpv4.DHCPv4) net.Addr {
	if x.alt {
		return x.peer
	}
	if gi := addr4(x.req.GatewayIPAddr); gi.IsValid() {
		if r.MessageType() == dhcpv4.MessageTypeNak {
			r.SetBroadcast()
		}
		return udpAddr(gi, s.RelayPort, 67)
	}
	if ci := addr4(x.req.ClientIPAddr); ci.IsValid() && r.MessageType() != dhcpv4.MessageTypeNak {
		return udpAddr(ci, s.ClientPort, 68)
	}
	b := s.BroadcastAddr
	if !b.IsValid() {
		b = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	}
	return udpAddr(b, s.ClientPort, 68)
}

func udpAddr(a netip.Addr, port, def int) *net.UDPAddr {
	if port == 0 {
		port = def
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(port)))
}

// addr4 converts a packet address; 0.0.0.0 and garbage become the zero Addr.
func addr4(ip net.IP) netip.Addr {
	v4 := ip.To4()
	if v4 == nil {
		return netip.Addr{}
	}
	a := netip.AddrFrom4([4]byte(v4))
	if a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}
