package pisim

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// TestDiscoverLatency: one DISCOVER, answered by the fake server, measured;
// an unanswered one times out.
func TestDiscoverLatency(t *testing.T) {
	s := newFakeServer(t, pi4Tree(""))
	s.start()
	p := designPi()
	l, err := s.transport().Open(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d, err := p.DiscoverLatency(l, 0x1234, 2*time.Second)
	if err != nil || d <= 0 || d > 2*time.Second {
		t.Fatalf("latency %v, err %v", d, err)
	}

	silent, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	l2, err := (&UDPTransport{DHCPServer: silent.LocalAddr().(*net.UDPAddr)}).Open(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if _, err := p.DiscoverLatency(l2, 0x1235, 100*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("no server: err %v, want a deadline error", err)
	}
}
