package tftp

import (
	"fmt"
	"net"

	"golang.org/x/net/ipv4"
)

// packetInfo is where a request came from and on which address and
// interface it arrived.
type packetInfo struct {
	peer    *net.UDPAddr
	local   net.IP // address to answer from; nil lets the kernel choose
	ifIndex int    // receiving interface, 0 when unknown
}

// packetReader reads request datagrams with their packetInfo.
type packetReader interface {
	read(b []byte) (int, packetInfo, error)
}

// newPacketReader returns a reader that learns the destination address and
// interface of each request when conn is an IPv4 UDP socket, so replies leave
// from the address the client asked and blocks fit the interface MTU.
func newPacketReader(conn net.PacketConn) packetReader {
	pr := plainReader{conn: conn}
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok && !ua.IP.IsUnspecified() {
		pr.local = ua.IP
	}
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		return pr
	}
	if ua, ok := uc.LocalAddr().(*net.UDPAddr); !ok || (ua.IP.To4() == nil && !ua.IP.IsUnspecified()) {
		return pr
	}
	p4 := ipv4.NewPacketConn(uc)
	if err := p4.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		return pr
	}
	return controlReader{conn: p4, fallback: pr.local}
}

type plainReader struct {
	conn  net.PacketConn
	local net.IP
}

func (r plainReader) read(b []byte) (int, packetInfo, error) {
	for {
		n, addr, err := r.conn.ReadFrom(b)
		if err != nil {
			return 0, packetInfo{}, err
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			return 0, packetInfo{}, fmt.Errorf("tftp needs a UDP socket, got a %s address", addr.Network())
		}
		return n, packetInfo{peer: ua, local: r.local}, nil
	}
}

type controlReader struct {
	conn     *ipv4.PacketConn
	fallback net.IP
}

func (r controlReader) read(b []byte) (int, packetInfo, error) {
	n, cm, addr, err := r.conn.ReadFrom(b)
	if err != nil {
		return 0, packetInfo{}, err
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, packetInfo{}, fmt.Errorf("tftp needs a UDP socket, got a %s address", addr.Network())
	}
	info := packetInfo{peer: ua, local: r.fallback}
	if cm != nil {
		info.ifIndex = cm.IfIndex
		// A request sent to a broadcast or multicast address is answered
		// from the address the kernel picks for the route back.
		if dst := cm.Dst; dst != nil && !dst.IsMulticast() && !dst.Equal(net.IPv4bcast) && !dst.IsUnspecified() {
			info.local = dst
		}
	}
	return n, info, nil
}
