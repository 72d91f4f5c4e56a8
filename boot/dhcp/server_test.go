package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklet/racklet-boot/boot/dhcp/dhcptest"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// harness is a server on 127.0.0.1:0 with a loopback client that gets
// every reply (broadcast, unicast to 127.0.0.x, relay).
type harness struct {
	srv   *Server
	store *testStore
	cl    *dhcptest.Client
	clock *clock
}

func fullSettings(t testing.TB) Settings {
	inv := testInventory{
		{Name: "pi-01", Serial: "5b154510", Address: netip.MustParseAddr("127.0.0.50")},
		{Name: "pc-01", MAC: mustMAC(t, "52:54:00:99:00:a1")},
	}
	return Settings{
		Mode:       ModeFull,
		ServerAddr: netip.MustParseAddr("127.0.0.1"),
		HTTPPort:   8080,
		Subnet:     netip.MustParsePrefix("127.0.0.0/24"),
		Pool:       &Pool{Start: netip.MustParseAddr("127.0.0.100"), End: netip.MustParseAddr("127.0.0.103")},
		Router:     netip.MustParseAddr("127.0.0.1"),
		DNS:        []netip.Addr{netip.MustParseAddr("127.0.0.1")},
		Domain:     "rack.test",
		LeaseTime:  time.Hour,
		Unknown:    UnknownDefault,
		Inventory:  inv,
	}
}

func startHarness(t testing.TB, st Settings, store *testStore) *harness {
	t.Helper()
	return startHarnessClock(t, st, store, &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
}

func startHarnessClock(t testing.TB, st Settings, store *testStore, c *clock) *harness {
	t.Helper()
	if store == nil {
		store = newTestStore()
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: New(st, Options{}), store: store, clock: c}
	h.cl = dhcptest.NewClient(t, conn.LocalAddr())
	h.srv.Leases, h.srv.Events, h.srv.Now = store, store, h.clock.Now
	h.srv.ClientPort, h.srv.RelayPort = h.cl.Port, h.cl.Port
	h.srv.BroadcastAddr = netip.MustParseAddr("127.0.0.1")
	testutil.Serve(t, func(ctx context.Context) error { return h.srv.Serve(ctx, conn) })
	return h
}

const wait = 2 * time.Second
const quiet = 200 * time.Millisecond // how long "no reply" is waited for

func msg(t testing.TB, mt dhcpv4.MessageType, mac string, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	t.Helper()
	m := discoverWith(t, mac, opts...)
	m.UpdateOption(dhcpv4.OptMessageType(mt))
	return m
}

func ip(s string) net.IP { return net.ParseIP(s).To4() }

// dora runs DISCOVER, REQUEST and returns the ACK's address.
func (h *harness) dora(t testing.TB, mac string, opts ...dhcpv4.Option) string {
	t.Helper()
	offer, err := h.cl.Exchange(msg(t, dhcpv4.MessageTypeDiscover, mac, opts...), wait)
	if err != nil {
		t.Fatalf("discover %s: %v", mac, err)
	}
	if offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("discover %s: got %v, want OFFER", mac, offer.MessageType())
	}
	req := msg(t, dhcpv4.MessageTypeRequest, mac, append(opts,
		dhcpv4.OptServerIdentifier(offer.ServerIdentifier()), dhcpv4.OptRequestedIPAddress(offer.YourIPAddr))...)
	ack, err := h.cl.Exchange(req, wait)
	if err != nil {
		t.Fatalf("request %s: %v", mac, err)
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("request %s: got %v (%s), want ACK", mac, ack.MessageType(), ack.Message())
	}
	if !ack.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Fatalf("ACK %v differs from OFFER %v", ack.YourIPAddr, offer.YourIPAddr)
	}
	return ack.YourIPAddr.String()
}

func (h *harness) expectNone(t testing.TB, m *dhcpv4.DHCPv4) {
	t.Helper()
	r, err := h.cl.Exchange(m, quiet)
	if !errors.Is(err, dhcptest.ErrNoReply) {
		t.Fatalf("got %v (err %v), want no reply", r, err)
	}
}

func (h *harness) expect(t testing.TB, m *dhcpv4.DHCPv4, want dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	t.Helper()
	r, err := h.cl.Exchange(m, wait)
	if err != nil {
		t.Fatalf("%v: %v", m.MessageType(), err)
	}
	if r.MessageType() != want {
		t.Fatalf("%v: got %v (%s), want %v", m.MessageType(), r.MessageType(), r.Message(), want)
	}
	return r
}

func ip4(s string) netip.Addr { return netip.MustParseAddr(s) }
