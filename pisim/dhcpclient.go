package pisim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// Sentinel errors of the DHCP phase.
var (
	// ErrDHCPTimeout means no usable address and boot offer arrived in time.
	ErrDHCPTimeout = errors.New("dhcp: no usable offer within the bootloader's timeout")
	// ErrNoTFTPServer means the boot offer named no TFTP server at all.
	ErrNoTFTPServer = errors.New("dhcp: boot offer names no tftp server (siaddr, option 66 and option 54 all empty)")
)

// lease is what the DHCP phase hands to the TFTP phase.
type lease struct {
	Addr       net.IP
	Mask       net.IPMask
	Router     net.IP
	ServerID   net.IP // the DHCP server that leased the address
	TFTPServer net.IP
	TFTPSource string // "siaddr", "option 66" or "option 54"
	Proxy      bool   // boot settings came from a different offer than the address
	Echoed97   bool
}

// discover builds the Pi's DHCPDISCOVER: options 53, 55, 60, 93, 94, 97.
func (p *Pi) discover(xid uint32, secs uint16) ([]byte, error) {
	o97, err := option97(p.fourCC(), p.boardRev(), p.MAC, p.Serial)
	if err != nil {
		return nil, err
	}
	m := p.baseMsg(xid, secs)
	m.Opts = []dhcpOpt{
		{optMsgType, []byte{dhcpDiscover}},
		{optParamList, piParamList},
		{optClassID, []byte(piClassID)},
		{optArch, []byte{0, 0}},
		{optNDI, []byte{1, 2, 1}},
		{optClientGUID, o97},
	}
	return m.marshal()
}

// request builds the Pi's DHCPREQUEST for addr from server: no option 60.
func (p *Pi) request(xid uint32, secs uint16, addr, server net.IP) ([]byte, error) {
	o97, err := option97(p.fourCC(), p.boardRev(), p.MAC, p.Serial)
	if err != nil {
		return nil, err
	}
	m := p.baseMsg(xid, secs)
	m.Opts = []dhcpOpt{
		{optMsgType, []byte{dhcpRequest}},
		{optParamList, piParamList},
		{optRequestedIP, addr.To4()},
		{optServerID, server.To4()},
		{optArch, []byte{0, 0}},
		{optNDI, []byte{1, 2, 1}},
		{optClientGUID, o97},
	}
	return m.marshal()
}

func (p *Pi) baseMsg(xid uint32, secs uint16) *dhcpMsg {
	m := &dhcpMsg{Op: bootRequest, Xid: xid, Secs: secs, CHAddr: p.MAC}
	if p.BroadcastFlag {
		m.Flags = flagBcast
	}
	return m
}

// isZeroIP reports whether ip is absent or 0.0.0.0.
func isZeroIP(ip net.IP) bool { return ip == nil || ip.Equal(net.IPv4zero) }

// dhcp runs DISCOVER/OFFER/REQUEST/ACK until a lease (with boot settings
// when needBoot is set) is complete or the DHCP timeout passes.
func (b *booter) dhcp(ctx context.Context, needBoot bool) (*lease, error) {
	p := b.p
	deadline := b.start.Add(orDur(p.DHCPTimeout, DefaultDHCPTimeout))
	retry := orDur(p.DHCPRetry, DefaultDHCPRetry)
	xid := b.rng.Uint32()
	var addrOffer, bootOffer *dhcpMsg
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !time.Now().Before(deadline) {
			return nil, ErrDHCPTimeout
		}
		pkt, err := p.discover(xid, b.secs())
		if err != nil {
			return nil, err
		}
		if err := b.link.SendDHCP(pkt); err != nil {
			return nil, fmt.Errorf("send dhcp discover: %w", err)
		}
		b.step(Step{Op: "dhcp-discover", Result: "sent", Detail: fmt.Sprintf("xid %#08x", xid)})
		until := minTime(time.Now().Add(retry), deadline)
		for addrOffer == nil || (needBoot && bootOffer == nil) {
			m, err := b.recvReply(ctx, xid, until)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return nil, err
			}
			if m.msgType() != dhcpOffer {
				continue
			}
			addr := !isZeroIP(m.YIAddr)
			bootErr := checkMenu(m.opt(optVendor), m.has(optVendor), p.Menu)
			detail := fmt.Sprintf("server %s yiaddr %s", m.optIP(optServerID), m.YIAddr)
			res := "boot offer"
			if bootErr != nil {
				res = "no boot settings: " + bootErr.Error()
			}
			b.step(Step{Op: "dhcp-offer", Result: res, Detail: detail})
			if addr && bootErr == nil {
				addrOffer, bootOffer = m, m
				break
			}
			if addr && addrOffer == nil {
				addrOffer = m
			}
			if bootErr == nil && bootOffer == nil {
				bootOffer = m
			}
		}
		if addrOffer == nil || (needBoot && bootOffer == nil) {
			continue
		}
		if bootOffer == nil {
			bootOffer = addrOffer
		}
		ack, err := b.requestLease(ctx, xid, addrOffer, deadline, retry)
		if errors.Is(err, errNak) {
			addrOffer, bootOffer = nil, nil
			xid = b.rng.Uint32()
			continue
		}
		if err != nil {
			return nil, err
		}
		return b.leaseFrom(addrOffer, bootOffer, ack, needBoot)
	}
}

var errNak = errors.New("dhcp nak")

// requestLease REQUESTs the address offered in offer and waits for its ACK.
func (b *booter) requestLease(ctx context.Context, xid uint32, offer *dhcpMsg, deadline time.Time, retry time.Duration) (*dhcpMsg, error) {
	server := offer.optIP(optServerID)
	if server == nil {
		server = offer.SIAddr
	}
	for time.Now().Before(deadline) {
		pkt, err := b.p.request(xid, b.secs(), offer.YIAddr, server)
		if err != nil {
			return nil, err
		}
		if err := b.link.SendDHCP(pkt); err != nil {
			return nil, fmt.Errorf("send dhcp request: %w", err)
		}
		b.step(Step{Op: "dhcp-request", Result: "sent", Detail: fmt.Sprintf("%s from %s", offer.YIAddr, server)})
		until := minTime(time.Now().Add(retry), deadline)
		for {
			m, err := b.recvReply(ctx, xid, until)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				return nil, err
			}
			if sid := m.optIP(optServerID); sid != nil && !sid.Equal(server) {
				continue // another server's answer (a proxy's ACK, say)
			}
			switch m.msgType() {
			case dhcpAck:
				if !m.YIAddr.Equal(offer.YIAddr) {
					continue
				}
				b.step(Step{Op: "dhcp-ack", Result: "ok", Detail: fmt.Sprintf("%s from %s", m.YIAddr, server)})
				return m, nil
			case dhcpNak:
				b.step(Step{Op: "dhcp-nak", Result: "restart", Detail: "from " + server.String()})
				return nil, errNak
			}
		}
	}
	return nil, ErrDHCPTimeout
}

// recvReply returns the next well-formed BOOTREPLY for this Pi and xid.
func (b *booter) recvReply(ctx context.Context, xid uint32, until time.Time) (*dhcpMsg, error) {
	for {
		raw, err := b.link.RecvDHCP(until)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return nil, cerr
			}
			return nil, err
		}
		m, err := parseDHCP(raw)
		if err != nil {
			b.log.Debug("ignoring malformed dhcp packet", "err", err)
			continue
		}
		if m.Op == bootReply && m.Xid == xid && bytes.Equal(m.CHAddr, b.p.MAC) {
			return m, nil
		}
	}
}

// leaseFrom combines the address ACK with the boot settings: from the ACK
// when it carries a matching option 43 itself, else from the boot offer. A
// lease without a TFTP server is an error only when needBoot is set.
func (b *booter) leaseFrom(addrOffer, bootOffer, ack *dhcpMsg, needBoot bool) (*lease, error) {
	l := &lease{Addr: ack.YIAddr.To4(), ServerID: ack.optIP(optServerID), Router: ack.optIP(optRouter)}
	if m := ack.opt(optSubnetMask); len(m) == 4 {
		l.Mask = net.IPMask(m)
	} else if m := addrOffer.opt(optSubnetMask); len(m) == 4 {
		l.Mask = net.IPMask(m)
	} else {
		l.Mask = net.CIDRMask(24, 32)
	}
	boot := bootOffer
	if checkMenu(ack.opt(optVendor), ack.has(optVendor), b.p.Menu) == nil {
		boot = ack
	}
	l.Proxy = bootOffer != addrOffer
	switch {
	case !isZeroIP(boot.SIAddr):
		l.TFTPServer, l.TFTPSource = boot.SIAddr.To4(), "siaddr"
	case net.ParseIP(string(bytes.TrimRight(boot.opt(optTFTPServer), "\x00"))).To4() != nil:
		l.TFTPServer, l.TFTPSource = net.ParseIP(string(bytes.TrimRight(boot.opt(optTFTPServer), "\x00"))).To4(), "option 66"
	case boot.optIP(optServerID) != nil:
		l.TFTPServer, l.TFTPSource = boot.optIP(optServerID), "option 54"
	case needBoot:
		return nil, ErrNoTFTPServer
	}
	o97, _ := option97(b.p.fourCC(), b.p.boardRev(), b.p.MAC, b.p.Serial)
	l.Echoed97 = bytes.Equal(boot.opt(optClientGUID), o97)
	return l, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
