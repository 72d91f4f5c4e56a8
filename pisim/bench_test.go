package pisim

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkTFTPRead measures the simulator's lock-step TFTP client against
// the in-test responder on loopback (1 MiB, blksize 1468): the client must
// never be the bottleneck when it measures a server.
func BenchmarkTFTPRead(b *testing.B) {
	data := randBytes(5, 1<<20)
	s := newFakeServer(b, map[string][]byte{"f": data})
	s.start()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	o := readOpts{Blksize: 1468, Timeout: 30 * time.Second, Retry: time.Second}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := tftpRead(context.Background(), conn, s.tftp.LocalAddr().(*net.UDPAddr), "f", o, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBootPi4 measures one whole simulated Pi 4 boot (DHCP and 24
// TFTP reads) against the in-test responder on loopback.
func BenchmarkBootPi4(b *testing.B) {
	s := newFakeServer(b, pi4Tree(""))
	s.start()
	tr := s.transport()
	for b.Loop() {
		res, err := designPi().BootOn(context.Background(), tr)
		if err != nil || !res.KernelLoaded {
			b.Fatalf("%v %v", err, res)
		}
	}
}
