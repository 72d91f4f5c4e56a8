package pisim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Transport attaches simulated Pis to a network.
type Transport interface {
	// Open gives p its own link (its own MAC and sockets on a real network).
	Open(ctx context.Context, p *Pi) (Link, error)
}

// Link is one Pi's attachment to the network: its DHCP socket, the address
// it configures after the ACK, and the sockets its TFTP reads use. Close
// must unblock any pending read and may be called more than once.
type Link interface {
	// SendDHCP broadcasts a DHCP client message to the servers (port 67).
	SendDHCP(b []byte) error
	// RecvDHCP returns the next DHCP payload sent to the client port (68),
	// or an error when deadline passes (os.ErrDeadlineExceeded) or the link
	// is closed.
	RecvDHCP(deadline time.Time) ([]byte, error)
	// Configure gives the link its leased address.
	Configure(ctx context.Context, addr net.IP, mask net.IPMask) error
	// ListenTFTP opens a UDP socket on the link's address for one TFTP read.
	ListenTFTP(ctx context.Context) (net.PacketConn, error)
	// TFTPServer returns where to send a TFTP read request for server ip.
	TFTPServer(ip net.IP) *net.UDPAddr
	// DialTCP opens a TCP connection from the link's address to raddr, for
	// HTTP boot.
	DialTCP(ctx context.Context, raddr *net.TCPAddr) (net.Conn, error)
	Close() error
}

// UDPTransport runs Pis over ordinary UDP sockets on loopback (or any local
// address), for tests without root: DHCP goes to DHCPServer, TFTP to
// TFTPPort on the address the DHCP reply named, HTTP boot to HTTP_HOST and
// HTTP_PORT as the Pi names them. Configure records the lease but changes
// nothing on the host.
type UDPTransport struct {
	DHCPServer *net.UDPAddr // where "broadcasts" go
	TFTPPort   int          // TFTP server port; 0 means 69
	LocalIP    net.IP       // address the sockets bind; nil means 127.0.0.1
}

// Open returns a loopback link for p.
func (t *UDPTransport) Open(ctx context.Context, p *Pi) (Link, error) {
	ip := t.LocalIP
	if ip == nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	var lc net.ListenConfig
	c, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return nil, fmt.Errorf("listen for dhcp: %w", err)
	}
	return &udpLink{t: t, ip: ip, dhcp: c}, nil
}

type udpLink struct {
	t    *UDPTransport
	ip   net.IP
	dhcp net.PacketConn

	mu     sync.Mutex
	tftp   []net.PacketConn
	closed bool
}

func (l *udpLink) SendDHCP(b []byte) error {
	_, err := l.dhcp.WriteTo(b, l.t.DHCPServer)
	return err
}

func (l *udpLink) RecvDHCP(deadline time.Time) ([]byte, error) {
	if err := l.dhcp.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	buf := make([]byte, dhcpMaxBytes)
	n, _, err := l.dhcp.ReadFrom(buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func (l *udpLink) Configure(context.Context, net.IP, net.IPMask) error { return nil }

func (l *udpLink) ListenTFTP(ctx context.Context) (net.PacketConn, error) {
	var lc net.ListenConfig
	c, err := lc.ListenPacket(ctx, "udp4", net.JoinHostPort(l.ip.String(), "0"))
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.tftp = append(l.tftp, c)
	return c, nil
}

func (l *udpLink) TFTPServer(ip net.IP) *net.UDPAddr {
	port := l.t.TFTPPort
	if port == 0 {
		port = 69
	}
	return &net.UDPAddr{IP: ip, Port: port}
}

func (l *udpLink) DialTCP(ctx context.Context, raddr *net.TCPAddr) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: l.ip}}
	return d.DialContext(ctx, "tcp4", raddr.String())
}

func (l *udpLink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for _, c := range l.tftp {
		c.Close()
	}
	err := l.dhcp.Close()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
