package dhcp

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklet/racklet-boot/store"
)

// benchClients is how many distinct MACs the benchmarks cycle through (the
// pool holds them all, so each one renews its own address).
const benchClients = 50000

func benchServer(b *testing.B, ls LeaseStore) *Server {
	s := New(Settings{
		Mode:       ModeFull,
		ServerAddr: netip.MustParseAddr("10.8.0.1"),
		Subnet:     netip.MustParsePrefix("10.8.0.0/16"),
		Pool:       &Pool{Start: netip.MustParseAddr("10.8.1.0"), End: netip.MustParseAddr("10.8.255.250")},
		Router:     netip.MustParseAddr("10.8.0.1"),
		LeaseTime:  time.Hour,
		Unknown:    UnknownDefault,
	}, Options{Leases: ls})
	return s
}

// doraTemplates are a DISCOVER and a REQUEST whose MAC (and requested
// address) the benchmark patches in place.
type doraTemplates struct {
	discover, request []byte
	reqIPAt           int
}

func newTemplates(b *testing.B) doraTemplates {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 0}
	d, _ := dhcpv4.NewDiscovery(mac)
	r, _ := dhcpv4.NewDiscovery(mac, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 8, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(0, 0, 0, 0))))
	t := doraTemplates{discover: d.ToBytes(), request: r.ToBytes()}
	t.reqIPAt = bytes.Index(t.request[240:], []byte{50, 4, 0, 0, 0, 0}) + 240 + 2
	if t.reqIPAt < 242 {
		b.Fatal("option 50 not found in the REQUEST template")
	}
	return t
}

// dora runs one DISCOVER/REQUEST through the handler for client i.
func (t doraTemplates) dora(b *testing.B, s *Server, i uint32) {
	disc := append([]byte(nil), t.discover...)
	req := append([]byte(nil), t.request...)
	binary.BigEndian.PutUint32(disc[30:34], i)
	binary.BigEndian.PutUint32(req[30:34], i)
	copy(disc[4:8], disc[30:34]) // xid
	copy(req[4:8], req[30:34])
	peer := &net.UDPAddr{IP: net.IPv4zero, Port: 68}
	offer, _ := s.handle(context.Background(), disc, peer, false)
	if offer == nil {
		b.Fatalf("client %d: no offer", i)
	}
	copy(req[t.reqIPAt:t.reqIPAt+4], offer[16:20])
	ack, _ := s.handle(context.Background(), req, peer, false)
	if ack == nil || ack[242] != byte(dhcpv4.MessageTypeAck) && !bytes.Contains(ack[240:], []byte{53, 1, 5}) {
		b.Fatalf("client %d: no ACK", i)
	}
}

// BenchmarkHandleDORA is the full allocate+persist+reply path with an
// in-memory store: the server's own cost per lease.
func BenchmarkHandleDORA(b *testing.B) {
	s := benchServer(b, newTestStore())
	t := newTemplates(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t.dora(b, s, uint32(i%benchClients))
	}
}

// BenchmarkHandleDORABoltParallel is the same path with the bbolt store
// (fsync before each ACK) and concurrent clients, so writes share commits.
func BenchmarkHandleDORABoltParallel(b *testing.B) {
	st, err := store.OpenBolt(filepath.Join(b.TempDir(), "leases.db"), store.BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s := benchServer(b, st)
	t := newTemplates(b)
	var next atomic.Uint32
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t.dora(b, s, next.Add(1)%benchClients)
		}
	})
	b.StopTimer()
	stats := st.Stats()
	if stats.Commits > 0 {
		b.ReportMetric(float64(stats.Writes)/float64(stats.Commits), "writes/commit")
	}
}
