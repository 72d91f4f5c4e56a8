package tftp

import (
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"
)

// BenchmarkTransfer reads a 4 MiB file over loopback with a minimal
// in-process client, lock-step and windowed, at the Raspberry Pi's block
// size. Compare the windowsize rows with windowsize=1 from the same run.
func BenchmarkTransfer(b *testing.B) {
	data := pattern(4 << 20)
	srv := startServer(b, &Server{Files: &fakeFiles{files: map[string][]byte{"f": data}}})
	for _, w := range []int{1, 4, 16, 64} {
		b.Run("windowsize="+strconv.Itoa(w), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				if n := benchRead(b, srv, 1468, w); n != len(data) {
					b.Fatalf("read %d bytes, want %d", n, len(data))
				}
			}
		})
	}
}

// benchRead reads "f" with the given options and returns the byte count.
func benchRead(b *testing.B, srv *net.UDPAddr, blksize, window int) int {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	req := rrq(opRRQ, "f", "octet", "blksize", strconv.Itoa(blksize), "windowsize", strconv.Itoa(window))
	if _, err := conn.WriteToUDP(req, srv); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, blksize+4)
	ack := []byte{0, opACK, 0, 0}
	var peer *net.UDPAddr
	total, next, inWindow := 0, uint16(1), 0
	for {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			b.Fatalf("read: %v", err)
		}
		peer = from
		switch binary.BigEndian.Uint16(buf) {
		case opOACK:
			binary.BigEndian.PutUint16(ack[2:], 0)
			_, _ = conn.WriteToUDP(ack, peer)
			continue
		case opDATA:
		default:
			b.Fatalf("unexpected packet %v", buf[:min(n, 40)])
		}
		blk := binary.BigEndian.Uint16(buf[2:])
		if blk != next {
			binary.BigEndian.PutUint16(ack[2:], next-1)
			_, _ = conn.WriteToUDP(ack, peer)
			inWindow = 0
			continue
		}
		total += n - 4
		next++
		inWindow++
		last := n-4 < blksize
		if last || inWindow == window {
			binary.BigEndian.PutUint16(ack[2:], blk)
			_, _ = conn.WriteToUDP(ack, peer)
			inWindow = 0
		}
		if last {
			return total
		}
	}
}

// BenchmarkMiss measures the answer to a request for a missing file, as
// GRUB sends by the dozen.
func BenchmarkMiss(b *testing.B) {
	srv := startServer(b, &Server{Files: &fakeFiles{}})
	c := newRawClient(b, srv)
	req := rrq(opRRQ, "grub.cfg-01-52-54-00-12-34-56", "octet", "blksize", "1468")
	for range b.N {
		c.request(req)
		if p := c.recv(2 * time.Second); p.Code != errNotFound {
			b.Fatalf("got %+v, want ERROR 1", p)
		}
	}
}
