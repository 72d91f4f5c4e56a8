// Package ra answers IPv6 router solicitations on the boot interface with a
// router advertisement that configures nothing: router lifetime 0 (not a
// default router), no prefix information, Managed and Other flags clear,
// so no address, route or DHCPv6 follows from it.
//
// Why: iPXE (QEMU's NIC ROM, and iPXE on real machines) starts IPv6
// autoconfiguration beside DHCPv4 and, on a segment with no router, waits
// about 13 s for an advertisement before it goes on. Any advertisement ends
// that wait; this one tells it there is nothing to configure. Where a real
// IPv6 router serves the segment, turn it off (rack config
// server.routerAdvertisements: false): two routers advertising is harmless
// with lifetime 0, but the operator's router should be the only voice.
//
// Wire facts (RFC 4861): solicitations arrive on the all-routers group
// ff02::2 with hop limit 255; an advertisement leaves from the interface's
// link-local address with hop limit 255, to the soliciting address, or to
// all nodes (ff02::1) when the solicitation came from the unspecified
// address. Answers are rate-limited so a flood of solicitations cannot make
// the server a multicast amplifier.
package ra

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// MinInterval is the shortest gap between two advertisements (RFC 4861
// section 6.2.6 asks for at least MIN_DELAY_BETWEEN_RAS, 3 s, between
// multicast ones; unicast answers to distinct clients are allowed faster,
// and this bound keeps a flood cheap).
const MinInterval = 50 * time.Millisecond

var (
	allRouters = net.ParseIP("ff02::2")
	allNodes   = net.ParseIP("ff02::1")
)

// Responder answers router solicitations on one interface.
type Responder struct {
	// Interface is the boot interface (rack config server.interface).
	Interface string
	// Log receives one line per answered solicitation at debug level and
	// warnings; nil discards.
	Log *slog.Logger
}

// Conn is a Responder's open ICMPv6 socket on its interface.
type Conn struct {
	c   *icmp.PacketConn
	p   *ipv6.PacketConn
	ifc *net.Interface
}

// Close closes the socket.
func (c *Conn) Close() error { return c.c.Close() }

// Listen opens the ICMPv6 socket on the interface, in the calling thread's
// network namespace. It fails when the interface does not exist, has no
// IPv6 link-local address (IPv6 disabled) or the socket cannot be opened.
func (r *Responder) Listen() (*Conn, error) {
	ifc, err := net.InterfaceByName(r.Interface)
	if err != nil {
		return nil, fmt.Errorf("router advertisements on %q: %w", r.Interface, err)
	}
	if _, err := linkLocal(ifc); err != nil {
		return nil, fmt.Errorf("router advertisements on %s: %w", ifc.Name, err)
	}
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("router advertisements: open an ICMPv6 socket: %w", err)
	}
	p := c.IPv6PacketConn()
	if err := setup(p, ifc); err != nil {
		c.Close()
		return nil, fmt.Errorf("router advertisements on %s: %w", ifc.Name, err)
	}
	return &Conn{c: c, p: p, ifc: ifc}, nil
}

// Serve answers solicitations on c until ctx ends, then closes c and
// returns nil.
func (r *Responder) Serve(ctx context.Context, c *Conn) error {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	return r.serve(ctx, c.p, c.ifc)
}

// ListenAndServe is Listen, then Serve until ctx ends.
func (r *Responder) ListenAndServe(ctx context.Context) error {
	c, err := r.Listen()
	if err != nil {
		return err
	}
	return r.Serve(ctx, c)
}

// setup joins ff02::2 on ifc, sets hop limit 255 for what we send, asks for
// the receiving interface and hop limit of each packet, and filters
// everything but router solicitations in the kernel.
func setup(p *ipv6.PacketConn, ifc *net.Interface) error {
	if err := p.JoinGroup(ifc, &net.IPAddr{IP: allRouters}); err != nil {
		return fmt.Errorf("join ff02::2: %w", err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := p.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("set the ICMPv6 filter: %w", err)
	}
	if err := p.SetControlMessage(ipv6.FlagInterface|ipv6.FlagHopLimit, true); err != nil {
		return fmt.Errorf("ask for control messages: %w", err)
	}
	if err := p.SetMulticastHopLimit(255); err != nil {
		return err
	}
	if err := p.SetHopLimit(255); err != nil {
		return err
	}
	return p.SetMulticastInterface(ifc)
}

func (r *Responder) serve(ctx context.Context, p *ipv6.PacketConn, ifc *net.Interface) error {
	ra := Advertisement(ifc.HardwareAddr)
	buf := make([]byte, 1500)
	var last time.Time
	r.logger().Info("answering IPv6 router solicitations with an advertisement that configures nothing", "interface", ifc.Name)
	for {
		n, cm, src, err := p.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("router advertisements: read: %w", err)
		}
		if cm == nil || cm.IfIndex != ifc.Index || cm.HopLimit != 255 || !IsSolicitation(buf[:n]) {
			continue // another interface, or forwarded: not on our link (RFC 4861 6.1.1)
		}
		now := time.Now()
		if now.Sub(last) < MinInterval {
			continue
		}
		last = now
		dst := &net.IPAddr{IP: allNodes, Zone: ifc.Name}
		if ip, ok := src.(*net.IPAddr); ok && !ip.IP.IsUnspecified() {
			dst = &net.IPAddr{IP: ip.IP, Zone: ifc.Name}
		}
		if _, err := p.WriteTo(ra, &ipv6.ControlMessage{HopLimit: 255, IfIndex: ifc.Index}, dst); err != nil {
			r.logger().Warn("send router advertisement", "ip", dst.IP.String(), "err", err)
			continue
		}
		r.logger().Debug("router advertisement sent", "ip", dst.IP.String())
	}
}

// Advertisement returns the ICMPv6 router advertisement we send: current
// hop limit 0 (unspecified), M and O clear, router lifetime 0, reachable
// time and retransmit timer 0 (unspecified), and only a source link-layer
// address option when mac is known. The kernel fills in the checksum.
func Advertisement(mac net.HardwareAddr) []byte {
	body := make([]byte, 12) // hop limit, flags, lifetime(2), reachable(4), retrans(4)
	if len(mac) == 6 {
		body = append(body, 1, 1) // source link-layer address, 8 bytes
		body = append(body, mac...)
	}
	m := icmp.Message{Type: ipv6.ICMPTypeRouterAdvertisement, Body: &icmp.RawBody{Data: body}}
	b, err := m.Marshal(nil)
	if err != nil {
		panic(fmt.Sprintf("ra: marshal a fixed advertisement: %v", err)) // cannot happen: RawBody always marshals
	}
	return b
}

// IsSolicitation reports whether b is a well-formed router solicitation
// (RFC 4861 section 6.1.1: type 133, code 0, at least 8 bytes, every
// option with a non-zero length that fits).
func IsSolicitation(b []byte) bool {
	if len(b) < 8 || b[0] != byte(ipv6.ICMPTypeRouterSolicitation) || b[1] != 0 {
		return false
	}
	for opts := b[8:]; len(opts) > 0; {
		if len(opts) < 2 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return false
		}
		opts = opts[int(opts[1])*8:]
	}
	return true
}

// linkLocal returns ifc's IPv6 link-local address.
func linkLocal(ifc *net.Interface) (net.IP, error) {
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() == nil && n.IP.IsLinkLocalUnicast() {
			return n.IP, nil
		}
	}
	return nil, errors.New("no IPv6 link-local address (is IPv6 disabled on it?)")
}

func (r *Responder) logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log.With("component", "ra")
}
