package tftp

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestListenAndServe serves on a wildcard address (":port", dual-stack
// where the host has IPv6) and reads over IPv4 and, when available, IPv6.
func TestListenAndServe(t *testing.T) {
	// Find a free port, then hand it to ListenAndServe.
	probe, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()

	data := pattern(100000)
	s := &Server{Files: &fakeFiles{files: map[string][]byte{"f": data}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ListenAndServe(ctx, ":"+strconv.Itoa(port)) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenAndServe = %v after cancel, want nil", err)
		}
	}()

	for _, host := range []string{"127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			network := "udp4"
			if host == "::1" {
				network = "udp6"
			}
			conn, err := net.ListenUDP(network, &net.UDPAddr{IP: net.ParseIP(host)})
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			c := &rawClient{t: t, conn: conn, srv: &net.UDPAddr{IP: net.ParseIP(host), Port: port}}
			defer conn.Close()
			var got []byte
			// The server goroutine may not be listening yet.
			for attempt := 0; ; attempt++ {
				c.request(rrq(opRRQ, "f", "octet", "blksize", "1468", "windowsize", "4"))
				_, err := c.tryRecv(200 * time.Millisecond)
				if err == nil {
					c.ack(0)
					break
				}
				if attempt >= 20 {
					t.Fatalf("no answer from %s: %v", host, err)
				}
			}
			var out bytes.Buffer
			for next := uint16(1); ; next++ {
				p := c.recv(5 * time.Second)
				if p.Op != opDATA || p.Block != next {
					t.Fatalf("got %+v, want DATA %d", p, next)
				}
				out.Write(p.Data)
				if next%4 == 0 || len(p.Data) < 1468 {
					c.ack(next)
				}
				if len(p.Data) < 1468 {
					break
				}
			}
			got = out.Bytes()
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, want %d", len(got), len(data))
			}
		})
	}
}
