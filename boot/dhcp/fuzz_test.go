package dhcp

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// checkTable verifies the allocator's invariants: both indexes agree and no
// address is held by two clients.
func checkTable(t *testing.T, s *Server) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for mac, l := range s.table.byMAC {
		if l.MAC != mac {
			t.Fatalf("byMAC[%s] holds a lease for %s", mac, l.MAC)
		}
		if s.table.byAddr[l.Addr] != l {
			t.Fatalf("lease %s→%s missing from byAddr", mac, l.Addr)
		}
	}
	for a, l := range s.table.byAddr {
		if l.Addr != a {
			t.Fatalf("byAddr[%s] holds a lease for %s", a, l.Addr)
		}
		if !strings.HasPrefix(l.MAC, declinedKey) && s.table.byMAC[l.MAC] != l {
			t.Fatalf("address %s held by %s, whose byMAC entry differs", a, l.MAC)
		}
	}
}

// FuzzHandle feeds raw packets to a full-mode and a proxy-mode server: no
// input may panic, every reply must decode, and the lease table must stay
// consistent across inputs.
func FuzzHandle(f *testing.F) {
	pi := "00525069341131a000322ef8ed1045155b"
	seeds := []*dhcpv4.DHCPv4{
		discoverWith(f, "dc:a6:32:2e:f8:ed", dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(f, pi))),
		discoverWith(f, "52:54:00:99:00:a1", dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003000"), arch(16)),
		discoverWith(f, "52:54:00:99:00:a2", dhcpv4.OptUserClass("iPXE"), arch(0)),
		msg(f, dhcpv4.MessageTypeRequest, "02:00:00:00:00:01", dhcpv4.OptServerIdentifier(ip("127.0.0.1")), dhcpv4.OptRequestedIPAddress(ip("127.0.0.100"))),
		msg(f, dhcpv4.MessageTypeDecline, "02:00:00:00:00:01", dhcpv4.OptRequestedIPAddress(ip("127.0.0.100"))),
		msg(f, dhcpv4.MessageTypeRelease, "02:00:00:00:00:01"),
		msg(f, dhcpv4.MessageTypeInform, "02:00:00:00:00:01"),
		discoverWith(f, "02:00:00:00:00:02", dhcpv4.OptHostName(strings.Repeat("h", 255))),
	}
	for _, m := range seeds {
		b := m.ToBytes()
		f.Add(b, false)
		f.Add(b[:len(b)/2], false) // truncated
	}
	bad := seeds[0].ToBytes()
	bad[236] ^= 0xff // wrong magic cookie
	f.Add(bad, false)
	f.Add(seeds[0].ToBytes(), true)
	f.Add([]byte{}, false)

	st := fullSettings(f)
	full := New(st, Options{})
	full.Leases = newTestStore()
	st.Mode = ModeProxy
	proxy := New(st, Options{})
	peer := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 9), Port: 68}
	f.Fuzz(func(t *testing.T, data []byte, alt bool) {
		for _, s := range []*Server{full, proxy} {
			out, dst := s.handle(context.Background(), data, peer, alt)
			if out != nil {
				if dst == nil {
					t.Fatal("reply without a destination")
				}
				if _, err := dhcpv4.FromBytes(out); err != nil {
					t.Fatalf("reply does not decode: %v", err)
				}
			}
			checkTable(t, s)
		}
	})
}

// FuzzParseOption97 checks the option 97 decoder never panics and that a
// decoded identifier keeps its serial in the last four bytes.
func FuzzParseOption97(f *testing.F) {
	f.Add(mustHex(f, "00525069341131a000322ef8ed1045155b"))
	f.Add(mustHex(f, "00346950521131a000322ef8ed1045155b"))
	f.Add(mustHex(f, "001045155b1045155b1045155b1045155b"))
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOption97(b)
		if err != nil {
			return
		}
		if len(o.Serial) != 8 || (o.Model != 0 && o.Model != 4 && o.Model != 5) {
			t.Fatalf("bad decode %+v", o)
		}
	})
}
