// Package dhcptest helps test DHCP servers: a loopback client that sends
// requests and captures every reply (broadcast, unicast and relayed).
package dhcptest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Client sends requests to a server over loopback and reads its replies. It
// listens on 0.0.0.0 so replies to any 127.0.0.0/8 address reach it: point
// the server's ClientPort, RelayPort and BroadcastAddr (127.0.0.1) at Port.
type Client struct {
	Conn   *net.UDPConn
	Port   int
	Server *net.UDPAddr
}

// NewClient opens the client socket; it closes with the test.
func NewClient(t testing.TB, server net.Addr) *Client {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{Conn: c, Port: c.LocalAddr().(*net.UDPAddr).Port, Server: server.(*net.UDPAddr)}
}

// Send writes m to the server.
func (c *Client) Send(m *dhcpv4.DHCPv4) error {
	_, err := c.Conn.WriteToUDP(m.ToBytes(), c.Server)
	return err
}

// ErrNoReply is returned by Receive when nothing arrived in time.
var ErrNoReply = errors.New("dhcptest: no reply")

// Receive waits up to d for a reply with transaction ID xid, skipping others.
func (c *Client) Receive(xid dhcpv4.TransactionID, d time.Duration) (*dhcpv4.DHCPv4, error) {
	deadline := time.Now().Add(d)
	buf := make([]byte, 4096)
	for i := 0; i < 1000; i++ {
		if err := c.Conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		n, _, err := c.Conn.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, ErrNoReply
			}
			return nil, err
		}
		m, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("dhcptest: bad reply: %w", err)
		}
		if m.TransactionID == xid {
			return m, nil
		}
	}
	return nil, ErrNoReply
}

// Exchange sends m and waits up to d for its reply.
func (c *Client) Exchange(m *dhcpv4.DHCPv4, d time.Duration) (*dhcpv4.DHCPv4, error) {
	if err := c.Send(m); err != nil {
		return nil, err
	}
	return c.Receive(m.TransactionID, d)
}
