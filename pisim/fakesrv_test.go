package pisim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer is a DHCP + TFTP responder for tests, written with raw bytes
// (it does not use the package's encoders) so a shared mistake cannot hide.
// DHCP and TFTP listen on loopback ports; siaddr points at 127.0.0.1.
type fakeServer struct {
	t        testing.TB
	dhcp     net.PacketConn
	tftp     net.PacketConn
	files    map[string][]byte
	menu     string // option 43 menu text; "" sends no option 43
	proxy    bool   // answer like a router plus a proxy: two offers
	echo97   bool
	noOpts   bool          // ignore TFTP options (no OACK)
	blkCap   int           // cap the blksize granted; 0 = no cap
	stall    string        // never answer reads of this file after the OACK
	dropAck0 int           // ignore this many ACK 0s (per transfer) to force retransmissions
	rto      time.Duration // server retransmit timeout

	mu     sync.Mutex
	events []string // "RRQ name", "ERR name code msg", "DONE name"
}

const (
	fakeRouterID = "\x0a\x00\x00\x01" // 10.0.0.1
	fakeProxyID  = "\x7f\x00\x00\x01" // 127.0.0.1
)

func newFakeServer(t testing.TB, files map[string][]byte) *fakeServer {
	t.Helper()
	s := &fakeServer{t: t, files: files, menu: DefaultMenu, echo97: true, rto: 200 * time.Millisecond}
	var err error
	if s.dhcp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if s.tftp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.dhcp.Close(); s.tftp.Close() })
	return s
}

func (s *fakeServer) start() {
	go s.serveDHCP()
	go s.serveTFTP()
}

func (s *fakeServer) transport() *UDPTransport {
	return &UDPTransport{DHCPServer: s.dhcp.LocalAddr().(*net.UDPAddr), TFTPPort: s.tftp.LocalAddr().(*net.UDPAddr).Port}
}

func (s *fakeServer) event(f string, a ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf(f, a...))
}

func (s *fakeServer) eventList() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.events...)
}

// rawOpts scans DHCP options after the cookie into a map.
func rawOpts(b []byte) map[byte][]byte {
	m := map[byte][]byte{}
	for i := 240; i < len(b) && b[i] != 255; {
		if b[i] == 0 {
			i++
			continue
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			break
		}
		m[b[i]] = b[i+2 : i+2+int(b[i+1])]
		i += 2 + int(b[i+1])
	}
	return m
}

// dnsmasqMenu is option 43 as dnsmasq encodes pxe-service=0,"<menu>".
func dnsmasqMenu(menu string) []byte {
	b := []byte{6, 1, 3, 10, 4, 0, 'P', 'X', 'E', 9, byte(3 + len(menu)), 0, 0, byte(len(menu))}
	return append(append(b, menu...), 255)
}

// reply builds a BOOTREPLY for req by hand.
func (s *fakeServer) reply(req []byte, typ byte, yiaddr, siaddr, sid string, boot bool) []byte {
	b := make([]byte, 240)
	b[0], b[1], b[2] = 2, 1, 6
	copy(b[4:8], req[4:8])     // xid
	copy(b[16:20], yiaddr)     // yiaddr
	copy(b[20:24], siaddr)     // siaddr
	copy(b[28:44], req[28:44]) // chaddr
	copy(b[236:], "\x63\x82\x53\x63")
	b = append(b, 53, 1, typ, 54, 4)
	b = append(b, sid...)
	if yiaddr != "\x00\x00\x00\x00" {
		b = append(b, 1, 4, 255, 255, 255, 0, 51, 4, 0, 0, 0x0e, 0x10)
	}
	if boot {
		b = append(b, 60, 9)
		b = append(b, "PXEClient"...)
		if s.menu != "" {
			m := dnsmasqMenu(s.menu)
			b = append(append(b, 43, byte(len(m))), m...)
		}
		if o97 := rawOpts(req)[97]; s.echo97 && o97 != nil {
			b = append(append(b, 97, byte(len(o97))), o97...)
		}
	}
	return append(b, 255)
}

func (s *fakeServer) serveDHCP() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.dhcp.ReadFrom(buf)
		if err != nil {
			return
		}
		req := append([]byte(nil), buf[:n]...)
		opts := rawOpts(req)
		if len(req) < 240 || len(opts[53]) != 1 {
			continue
		}
		zero, lease := "\x00\x00\x00\x00", "\x0a\x00\x00\x32"
		switch opts[53][0] {
		case 1:
			s.event("DISCOVER")
			if s.proxy {
				s.dhcp.WriteTo(s.reply(req, 2, lease, zero, fakeRouterID, false), from)
				s.dhcp.WriteTo(s.reply(req, 2, zero, fakeProxyID, fakeProxyID, true), from)
			} else {
				s.dhcp.WriteTo(s.reply(req, 2, lease, fakeProxyID, fakeProxyID, true), from)
			}
		case 3:
			_, has60 := opts[60]
			s.event("REQUEST server=%x has60=%v", opts[54], has60)
			if s.proxy && string(opts[54]) == fakeRouterID {
				s.dhcp.WriteTo(s.reply(req, 5, lease, zero, fakeRouterID, false), from)
			} else if !s.proxy && string(opts[54]) == fakeProxyID {
				s.dhcp.WriteTo(s.reply(req, 5, lease, fakeProxyID, fakeProxyID, true), from)
			}
		}
	}
}

func (s *fakeServer) serveTFTP() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.tftp.ReadFrom(buf)
		if err != nil {
			return
		}
		if n < 4 || binary.BigEndian.Uint16(buf) != 1 {
			continue
		}
		f := strings.Split(string(buf[2:n-1]), "\x00")
		go s.transfer(from, f)
	}
}

// transfer serves one RRQ (fields: name, mode, options...) from a new port.
func (s *fakeServer) transfer(to net.Addr, f []string) {
	name := f[0]
	s.event("RRQ %s %s", name, strings.Join(f[1:], " "))
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return
	}
	defer c.Close()
	data, ok := s.files[name]
	if !ok {
		c.WriteTo(append([]byte{0, 5, 0, 1}, "File not found\x00"...), to)
		return
	}
	blk := 512
	var oack []byte
	for i := 2; i+1 < len(f) && !s.noOpts; i += 2 {
		switch strings.ToLower(f[i]) {
		case "tsize":
			oack = append(oack, "tsize\x00"+strconv.Itoa(len(data))+"\x00"...)
		case "blksize":
			blk, _ = strconv.Atoi(f[i+1])
			if s.blkCap > 0 && blk > s.blkCap {
				blk = s.blkCap
			}
			oack = append(oack, "blksize\x00"+strconv.Itoa(blk)+"\x00"...)
		}
	}
	buf := make([]byte, 65536)
	drops := s.dropAck0
	// send transmits pkt until the wanted ACK arrives; false ends the transfer.
	send := func(pkt []byte, want uint16) bool {
		for try := 0; try < 50; try++ {
			c.WriteTo(pkt, to)
			c.SetReadDeadline(time.Now().Add(s.rto))
			for {
				n, _, err := c.ReadFrom(buf)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil || n < 4 {
					return false
				}
				switch binary.BigEndian.Uint16(buf) {
				case 5:
					s.event("ERR %s %d %s", name, binary.BigEndian.Uint16(buf[2:]), strings.TrimRight(string(buf[4:n]), "\x00"))
					return false
				case 4:
					if binary.BigEndian.Uint16(buf[2:]) == want {
						if want == 0 && drops > 0 {
							drops--
							continue
						}
						return true
					}
				}
			}
		}
		return false
	}
	if oack != nil && !send(append([]byte{0, 6}, oack...), 0) {
		return
	}
	if name == s.stall {
		time.Sleep(5 * time.Second)
		return
	}
	var block uint16
	for off := 0; ; off += blk {
		block++ // rolls over from 65535 to 0
		end := min(off+blk, len(data))
		pkt := binary.BigEndian.AppendUint16([]byte{0, 3}, block)
		if !send(append(pkt, data[off:end]...), block) {
			return
		}
		if end-off < blk {
			s.event("DONE %s", name)
			return
		}
	}
}
