package pisim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// DHCP message types (option 53).
const (
	dhcpDiscover = 1
	dhcpOffer    = 2
	dhcpRequest  = 3
	dhcpDecline  = 4
	dhcpAck      = 5
	dhcpNak      = 6
)

// DHCP option codes the simulator reads or writes.
const (
	optPad         = 0
	optSubnetMask  = 1
	optRouter      = 3
	optVendor      = 43
	optRequestedIP = 50
	optMsgType     = 53
	optServerID    = 54
	optParamList   = 55
	optClassID     = 60
	optTFTPServer  = 66
	optBootfile    = 67
	optArch        = 93
	optNDI         = 94
	optClientGUID  = 97
	optEnd         = 255
)

const (
	bootRequest  = 1
	bootReply    = 2
	dhcpHdrLen   = 236
	dhcpMinLen   = 300 // BOOTP minimum; the Pi pads its requests to it
	flagBcast    = 0x8000
	dhcpCookie   = 0x63825363
	dhcpMaxBytes = 1500
)

// errBadDHCP is wrapped by every DHCP decoding error.
var errBadDHCP = errors.New("malformed dhcp message")

// dhcpOpt is one DHCP option in wire order.
type dhcpOpt struct {
	Code byte
	Data []byte
}

// dhcpMsg is a decoded BOOTP/DHCP message. Options keep their wire order.
type dhcpMsg struct {
	Op     byte
	Xid    uint32
	Secs   uint16
	Flags  uint16
	CIAddr net.IP
	YIAddr net.IP
	SIAddr net.IP
	GIAddr net.IP
	CHAddr net.HardwareAddr
	SName  string
	File   string
	Opts   []dhcpOpt
}

// opt returns the data of the first option with code, or nil.
func (m *dhcpMsg) opt(code byte) []byte {
	for _, o := range m.Opts {
		if o.Code == code {
			return o.Data
		}
	}
	return nil
}

// has reports whether option code is present (even when empty).
func (m *dhcpMsg) has(code byte) bool {
	for _, o := range m.Opts {
		if o.Code == code {
			return true
		}
	}
	return false
}

// msgType returns option 53, or 0 when absent or malformed.
func (m *dhcpMsg) msgType() byte {
	if d := m.opt(optMsgType); len(d) == 1 {
		return d[0]
	}
	return 0
}

// optIP returns an option holding one IPv4 address, or nil.
func (m *dhcpMsg) optIP(code byte) net.IP {
	if d := m.opt(code); len(d) == 4 {
		return net.IPv4(d[0], d[1], d[2], d[3]).To4()
	}
	return nil
}

// marshal encodes m; it pads the message to the BOOTP minimum of 300 bytes.
func (m *dhcpMsg) marshal() ([]byte, error) {
	b := make([]byte, dhcpHdrLen, dhcpMinLen)
	b[0] = m.Op
	b[1] = 1 // htype ethernet
	b[2] = byte(len(m.CHAddr))
	binary.BigEndian.PutUint32(b[4:], m.Xid)
	binary.BigEndian.PutUint16(b[8:], m.Secs)
	binary.BigEndian.PutUint16(b[10:], m.Flags)
	for i, ip := range []net.IP{m.CIAddr, m.YIAddr, m.SIAddr, m.GIAddr} {
		if ip4 := ip.To4(); ip4 != nil {
			copy(b[12+4*i:], ip4)
		}
	}
	if len(m.CHAddr) > 16 {
		return nil, fmt.Errorf("hardware address of %d bytes does not fit chaddr", len(m.CHAddr))
	}
	copy(b[28:44], m.CHAddr)
	if len(m.SName) > 63 || len(m.File) > 127 {
		return nil, errors.New("sname or file field too long")
	}
	copy(b[44:108], m.SName)
	copy(b[108:236], m.File)
	b = binary.BigEndian.AppendUint32(b, dhcpCookie)
	for _, o := range m.Opts {
		if len(o.Data) > 255 {
			return nil, fmt.Errorf("option %d: %d bytes is over 255", o.Code, len(o.Data))
		}
		b = append(b, o.Code, byte(len(o.Data)))
		b = append(b, o.Data...)
	}
	b = append(b, optEnd)
	for len(b) < dhcpMinLen {
		b = append(b, optPad)
	}
	return b, nil
}

// parseDHCP decodes a BOOTP/DHCP message. Options after the end option are
// ignored; a truncated option is an error.
func parseDHCP(b []byte) (*dhcpMsg, error) {
	if len(b) < dhcpHdrLen+4 {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", errBadDHCP, len(b), dhcpHdrLen+4)
	}
	if c := binary.BigEndian.Uint32(b[dhcpHdrLen:]); c != dhcpCookie {
		return nil, fmt.Errorf("%w: magic cookie %#08x", errBadDHCP, c)
	}
	hlen := int(b[2])
	if hlen > 16 {
		return nil, fmt.Errorf("%w: hardware address length %d", errBadDHCP, hlen)
	}
	m := &dhcpMsg{
		Op:     b[0],
		Xid:    binary.BigEndian.Uint32(b[4:]),
		Secs:   binary.BigEndian.Uint16(b[8:]),
		Flags:  binary.BigEndian.Uint16(b[10:]),
		CIAddr: net.IP(append([]byte(nil), b[12:16]...)),
		YIAddr: net.IP(append([]byte(nil), b[16:20]...)),
		SIAddr: net.IP(append([]byte(nil), b[20:24]...)),
		GIAddr: net.IP(append([]byte(nil), b[24:28]...)),
		CHAddr: net.HardwareAddr(append([]byte(nil), b[28:28+hlen]...)),
		SName:  cString(b[44:108]),
		File:   cString(b[108:236]),
	}
	rest := b[dhcpHdrLen+4:]
	for len(rest) > 0 {
		code := rest[0]
		if code == optEnd {
			return m, nil
		}
		if code == optPad {
			rest = rest[1:]
			continue
		}
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			return nil, fmt.Errorf("%w: option %d truncated", errBadDHCP, code)
		}
		n := int(rest[1])
		m.Opts = append(m.Opts, dhcpOpt{Code: code, Data: append([]byte{}, rest[2:2+n]...)})
		rest = rest[2+n:]
	}
	return nil, fmt.Errorf("%w: no end option", errBadDHCP)
}

// cString returns b up to its first NUL byte.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
