package tftp

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestPacketReader checks that requests carry the address they were sent
// to and the receiving interface (lo here), on an IPv4 socket and on a
// dual-stack wildcard socket, so replies leave from the asked address and
// blksize is capped by that interface's MTU.
func TestPacketReader(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		testutil.Unavailable(t, fmt.Sprintf("no lo interface: %v", err))
	}
	for _, listen := range []string{"127.0.0.1:0", ":0"} {
		t.Run(listen, func(t *testing.T) {
			conn, err := net.ListenPacket("udp", listen)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := newPacketReader(conn)
			port := conn.LocalAddr().(*net.UDPAddr).Port
			c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, info, err := r.read(buf)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if string(buf[:n]) != "hello" {
				t.Errorf("read %q, want hello", buf[:n])
			}
			if !info.local.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("local address %v, want 127.0.0.1", info.local)
			}
			if info.ifIndex != lo.Index {
				t.Errorf("interface index %d, want lo's %d", info.ifIndex, lo.Index)
			}
			if !info.peer.IP.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("peer %v, want 127.0.0.1", info.peer)
			}
		})
	}
}
