package pisim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MacvlanTransport gives each Pi its own macvlan (mode bridge) on Parent,
// with the Pi's MAC, so a rack of simulated Pis looks like real boards on
// the wire. DHCP goes out of a UDP socket bound to the macvlan on port 68
// (SO_BINDTODEVICE, SO_BROADCAST, SO_REUSEADDR); replies are read from a
// packet socket, because servers send them unicast to an address the Pi
// does not have yet. After the ACK the leased address is added to the
// macvlan and TFTP runs from it. Needs root (CAP_NET_ADMIN and CAP_NET_RAW)
// and the ip(8) command.
type MacvlanTransport struct {
	Parent string // the Linux interface the macvlans sit on
	// NetNS is the named network namespace (as ip netns names it) that
	// holds Parent; the macvlans and sockets are made there. Empty means the
	// caller's namespace.
	NetNS string
	// NamePrefix starts each macvlan's name, followed by the Pi's serial;
	// default "rkp". Names are cut to 15 bytes.
	NamePrefix string
}

// Open creates the Pi's macvlan and its DHCP sockets.
func (t *MacvlanTransport) Open(ctx context.Context, p *Pi) (Link, error) {
	name := orStr(t.NamePrefix, "rkp") + p.Name()
	if len(name) > 15 {
		name = name[:15]
	}
	if err := ipCmd(ctx, t.NetNS, "link", "add", name, "link", t.Parent, "address", p.MAC.String(), "type", "macvlan", "mode", "bridge"); err != nil {
		if strings.Contains(err.Error(), "File exists") {
			err = fmt.Errorf("%w (a leftover of a killed run? ip link del %s)", err, name)
		}
		return nil, fmt.Errorf("create macvlan %s on %s: %w", name, t.Parent, err)
	}
	l := &macvlanLink{name: name, ns: t.NetNS}
	// Quiet, strict neighbours: no IPv6 chatter, each macvlan answers ARP
	// only for its own address, and replies arriving on the "wrong" macvlan
	// of a shared subnet are not dropped by strict reverse-path filtering.
	err := inNetNS(t.NetNS, func() error {
		for path, val := range map[string]string{
			"ipv6/conf/" + name + "/disable_ipv6": "1",
			"ipv4/conf/" + name + "/arp_ignore":   "1",
			"ipv4/conf/" + name + "/arp_announce": "2",
			"ipv4/conf/" + name + "/rp_filter":    "2",
		} {
			_ = os.WriteFile("/proc/sys/net/"+path, []byte(val), 0o644) // best effort
		}
		return nil
	})
	if err == nil {
		err = ipCmd(ctx, t.NetNS, "link", "set", name, "up")
	}
	var ifi *net.Interface
	if err == nil {
		ifi, err = waitRunning(ctx, t.NetNS, name)
	}
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("bring up macvlan %s: %w", name, err)
	}
	err = inNetNS(t.NetNS, func() error {
		var err error
		if l.raw, err = openPacketSocket(ifi.Index); err != nil {
			return fmt.Errorf("packet socket on %s: %w", name, err)
		}
		lc := net.ListenConfig{Control: deviceControl(name, true)}
		if l.dhcp, err = lc.ListenPacket(ctx, "udp4", "0.0.0.0:68"); err != nil {
			return fmt.Errorf("dhcp client socket on %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// waitRunning waits (at most 3 s) until the macvlan is running, that is
// has carrier from its parent: a Pi on a dead link would only time out.
func waitRunning(ctx context.Context, ns, name string) (*net.Interface, error) {
	deadline := time.Now().Add(3 * time.Second)
	for {
		var ifi *net.Interface
		err := inNetNS(ns, func() (err error) {
			ifi, err = net.InterfaceByName(name)
			return err
		})
		if err != nil {
			return nil, err
		}
		if ifi.Flags&net.FlagRunning != 0 {
			return ifi, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("macvlan %s has no carrier after 3s (is its parent up?)", name)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// deviceControl binds a socket to device name (and sets SO_REUSEADDR and
// SO_BROADCAST when dhcp is set) before it is bound to an address.
func deviceControl(name string, dhcp bool) func(string, string, syscall.RawConn) error {
	return func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, name); serr != nil {
				return
			}
			if dhcp {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
					return
				}
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
			}
		})
		return errors.Join(err, serr)
	}
}

// openPacketSocket opens a non-blocking AF_PACKET socket for IPv4 on the
// interface, wrapped in an *os.File so reads honour deadlines.
func openPacketSocket(ifindex int) (*os.File, error) {
	proto := int(htons(syscall.ETH_P_IP))
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_IP), Ifindex: ifindex}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "packet"), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

type macvlanLink struct {
	name string
	ns   string
	dhcp net.PacketConn
	raw  *os.File

	mu     sync.Mutex
	addr   net.IP
	closed bool
}

func (l *macvlanLink) SendDHCP(b []byte) error {
	_, err := l.dhcp.WriteTo(b, &net.UDPAddr{IP: net.IPv4bcast, Port: 67})
	return err
}

// RecvDHCP reads IPv4 packets off the packet socket until one is a UDP
// datagram to port 68, and returns its payload.
func (l *macvlanLink) RecvDHCP(deadline time.Time) ([]byte, error) {
	if err := l.raw.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	buf := make([]byte, 65536)
	for {
		n, err := l.raw.Read(buf)
		if err != nil {
			return nil, err
		}
		if payload, ok := udpPayload(buf[:n], 68); ok {
			return append([]byte(nil), payload...), nil
		}
	}
}

// Configure adds the leased address to the macvlan; DHCP is over, so the
// packet socket is closed.
func (l *macvlanLink) Configure(ctx context.Context, addr net.IP, mask net.IPMask) error {
	ones, _ := mask.Size()
	if err := ipCmd(ctx, l.ns, "addr", "add", fmt.Sprintf("%s/%d", addr, ones), "dev", l.name); err != nil {
		return fmt.Errorf("add %s to %s: %w", addr, l.name, err)
	}
	l.mu.Lock()
	l.addr = addr
	l.mu.Unlock()
	l.raw.Close()
	return nil
}

func (l *macvlanLink) ListenTFTP(ctx context.Context) (net.PacketConn, error) {
	l.mu.Lock()
	addr := l.addr
	l.mu.Unlock()
	var c net.PacketConn
	err := inNetNS(l.ns, func() (err error) {
		lc := net.ListenConfig{Control: deviceControl(l.name, false)}
		c, err = lc.ListenPacket(ctx, "udp4", net.JoinHostPort(addr.String(), "0"))
		return err
	})
	return c, err
}

func (l *macvlanLink) TFTPServer(ip net.IP) *net.UDPAddr { return &net.UDPAddr{IP: ip, Port: 69} }

// DialTCP connects from the leased address, bound to the macvlan, in the
// link's namespace (a socket keeps the namespace it was made in).
func (l *macvlanLink) DialTCP(ctx context.Context, raddr *net.TCPAddr) (net.Conn, error) {
	l.mu.Lock()
	addr := l.addr
	l.mu.Unlock()
	var c net.Conn
	err := inNetNS(l.ns, func() (err error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: addr}, Control: deviceControl(l.name, false)}
		c, err = d.DialContext(ctx, "tcp4", raddr.String())
		return err
	})
	return c, err
}

// Close closes the sockets and deletes the macvlan.
func (l *macvlanLink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.dhcp != nil {
		l.dhcp.Close()
	}
	if l.raw != nil {
		l.raw.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ipCmd(ctx, l.ns, "link", "del", l.name); err != nil {
		return fmt.Errorf("delete macvlan %s: %w", l.name, err)
	}
	return nil
}

// ipCmd runs ip(8) with args, in network namespace ns when it is not empty.
func ipCmd(ctx context.Context, ns string, args ...string) error {
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
