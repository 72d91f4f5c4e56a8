package dhcp

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestFullDORA(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	offer := h.expect(t, msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:01", dhcpv4.OptHostName("web-1")), dhcpv4.MessageTypeOffer)
	got := map[string]string{
		"yiaddr": offer.YourIPAddr.String(),
		"mask":   net.IP(offer.SubnetMask()).String(),
		"router": offer.Router()[0].String(),
		"dns":    offer.DNS()[0].String(),
		"domain": offer.DomainName(),
		"lease":  offer.IPAddressLeaseTime(0).String(),
		"server": offer.ServerIdentifier().String(),
	}
	want := map[string]string{"yiaddr": "127.0.0.100", "mask": "255.255.255.0", "router": "127.0.0.1",
		"dns": "127.0.0.1", "domain": "rack.test", "lease": "1h0m0s", "server": "127.0.0.1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offer (-want +got):\n%s", diff)
	}
	if _, ok := h.store.lease("02:00:00:00:00:01"); ok {
		t.Error("an offer was persisted; only acknowledged leases should be")
	}
	if a := h.dora(t, "02:00:00:00:00:01", dhcpv4.OptHostName("web-1")); a != "127.0.0.100" {
		t.Errorf("ACK address %s, want the offered 127.0.0.100", a)
	}
	l, ok := h.store.lease("02:00:00:00:00:01")
	if !ok {
		t.Fatal("lease not in the store when the ACK arrived")
	}
	wantL := struct{ Addr, State, Hostname string }{"127.0.0.100", StateBound, "web-1"}
	if diff := cmp.Diff(wantL, struct{ Addr, State, Hostname string }{l.Addr.String(), l.State, l.Hostname}); diff != "" {
		t.Errorf("stored lease (-want +got):\n%s", diff)
	}
	if !l.Expiry.Equal(h.clock.Now().Add(time.Hour)) {
		t.Errorf("lease expiry %v, want now+1h", l.Expiry)
	}
}

func TestFullRequestStates(t *testing.T) {
	tests := map[string]struct {
		mac  string
		opts func(bound net.IP) []dhcpv4.Option
		ci   bool // set ciaddr to the bound address (renewing)
		want dhcpv4.MessageType
	}{
		"renew by ciaddr": {mac: "02:00:00:00:00:01", ci: true, want: dhcpv4.MessageTypeAck,
			opts: func(net.IP) []dhcpv4.Option { return nil }},
		"init-reboot own address": {mac: "02:00:00:00:00:01", want: dhcpv4.MessageTypeAck,
			opts: func(b net.IP) []dhcpv4.Option { return []dhcpv4.Option{dhcpv4.OptRequestedIPAddress(b)} }},
		"init-reboot wrong subnet": {mac: "02:00:00:00:00:01", want: dhcpv4.MessageTypeNak,
			opts: func(net.IP) []dhcpv4.Option { return []dhcpv4.Option{dhcpv4.OptRequestedIPAddress(ip("10.1.2.3"))} }},
		"init-reboot other's address": {mac: "02:00:00:00:00:02", want: dhcpv4.MessageTypeNak,
			opts: func(b net.IP) []dhcpv4.Option { return []dhcpv4.Option{dhcpv4.OptRequestedIPAddress(b)} }},
		"init-reboot other address than own lease": {mac: "02:00:00:00:00:01", want: dhcpv4.MessageTypeNak,
			opts: func(net.IP) []dhcpv4.Option { return []dhcpv4.Option{dhcpv4.OptRequestedIPAddress(ip("127.0.0.102"))} }},
		"selecting a taken address": {mac: "02:00:00:00:00:02", want: dhcpv4.MessageTypeNak,
			opts: func(b net.IP) []dhcpv4.Option {
				return []dhcpv4.Option{dhcpv4.OptServerIdentifier(ip("127.0.0.1")), dhcpv4.OptRequestedIPAddress(b)}
			}},
		"selecting another server": {mac: "02:00:00:00:00:01", want: 0,
			opts: func(b net.IP) []dhcpv4.Option {
				return []dhcpv4.Option{dhcpv4.OptServerIdentifier(ip("127.0.0.9")), dhcpv4.OptRequestedIPAddress(b)}
			}},
		"init-reboot with no record": {mac: "02:00:00:00:00:03", want: 0,
			opts: func(net.IP) []dhcpv4.Option { return []dhcpv4.Option{dhcpv4.OptRequestedIPAddress(ip("127.0.0.103"))} }},
		"request naming no address": {mac: "02:00:00:00:00:01", want: dhcpv4.MessageTypeNak,
			opts: func(net.IP) []dhcpv4.Option { return nil }},
		"another node's reservation": {mac: "02:00:00:00:00:03", want: dhcpv4.MessageTypeNak,
			opts: func(net.IP) []dhcpv4.Option { return []dhcpv4.Option{dhcpv4.OptRequestedIPAddress(ip("127.0.0.50"))} }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := startHarness(t, fullSettings(t), nil)
			bound := ip(h.dora(t, "02:00:00:00:00:01"))
			h.clock.Advance(10 * time.Minute)
			m := msg(t, dhcpv4.MessageTypeRequest, tc.mac, tc.opts(bound)...)
			if tc.ci {
				m.ClientIPAddr = bound
			}
			if tc.want == 0 {
				h.expectNone(t, m)
				return
			}
			r := h.expect(t, m, tc.want)
			if tc.want == dhcpv4.MessageTypeAck {
				l, _ := h.store.lease(tc.mac)
				if !l.Expiry.Equal(h.clock.Now().Add(time.Hour)) {
					t.Errorf("lease not extended: expiry %v, want %v", l.Expiry, h.clock.Now().Add(time.Hour))
				}
				if !r.YourIPAddr.Equal(bound) {
					t.Errorf("ACK for %v, want %v", r.YourIPAddr, bound)
				}
			}
			if tc.want == dhcpv4.MessageTypeNak && r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
				t.Error("NAK carries a lease time")
			}
		})
	}
}

func TestFullReuseReleaseDecline(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	a := h.dora(t, "02:00:00:00:00:01")
	b := h.dora(t, "02:00:00:00:00:02")
	if a == b {
		t.Fatalf("two clients share %s", a)
	}
	if again := h.dora(t, "02:00:00:00:00:01"); again != a {
		t.Errorf("client got %s back, want its own %s", again, a)
	}
	// RELEASE: the store forgets it, the client still gets it back first.
	rel := msg(t, dhcpv4.MessageTypeRelease, "02:00:00:00:00:01", dhcpv4.OptServerIdentifier(ip("127.0.0.1")))
	rel.ClientIPAddr = ip(a)
	h.expectNone(t, rel)
	if _, ok := h.store.lease("02:00:00:00:00:01"); ok {
		t.Error("released lease still stored")
	}
	if again := h.dora(t, "02:00:00:00:00:01"); again != a {
		t.Errorf("after release client got %s, want %s back", again, a)
	}
	// DECLINE: the address is quarantined, the client moves.
	h.expectNone(t, msg(t, dhcpv4.MessageTypeDecline, "02:00:00:00:00:01",
		dhcpv4.OptServerIdentifier(ip("127.0.0.1")), dhcpv4.OptRequestedIPAddress(ip(a))))
	if q, ok := h.store.lease(declinedKey + a); !ok || q.State != StateDeclined {
		t.Errorf("declined address not persisted as quarantined: %+v", q)
	}
	moved := h.dora(t, "02:00:00:00:00:01")
	if moved == a || moved == b {
		t.Errorf("after decline client got %s (declined %s, other's %s)", moved, a, b)
	}
	c := h.dora(t, "02:00:00:00:00:03")
	if c == a {
		t.Errorf("quarantined %s handed to another client", a)
	}
	// Pool of four: a quarantined, b, moved, c bound: nothing left.
	h.expectNone(t, msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:04"))
	h.clock.Advance(DeclineHold + time.Second)
	if d := h.dora(t, "02:00:00:00:00:04"); d != a {
		t.Errorf("after quarantine got %s, want the freed %s", d, a)
	}
}

func TestFullExpiryOldestFirst(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	var addrs []string
	for i, mac := range []string{"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:04"} {
		addrs = append(addrs, h.dora(t, mac))
		if i == 0 {
			h.clock.Advance(time.Minute) // the first lease ends earliest
		}
	}
	h.expectNone(t, msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:05"))
	h.clock.Advance(time.Hour)
	if got := h.dora(t, "02:00:00:00:00:05"); got != addrs[0] {
		t.Errorf("new client got %s, want the oldest expired %s", got, addrs[0])
	}
	if _, ok := h.store.lease("02:00:00:00:00:01"); ok {
		t.Error("replaced expired lease still stored under its old MAC")
	}
	// The displaced client is told no when it comes back for it.
	m := msg(t, dhcpv4.MessageTypeRequest, "02:00:00:00:00:01")
	m.ClientIPAddr = ip(addrs[0])
	h.expect(t, m, dhcpv4.MessageTypeNak)
}

func TestFullOfferFloodDoesNotExhaustPool(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	for i := range 20 {
		mac := net.HardwareAddr{0x06, 0, 0, 0, 1, byte(i)}.String()
		h.expect(t, msg(t, dhcpv4.MessageTypeDiscover, mac), dhcpv4.MessageTypeOffer)
	}
	// A real client still gets an address at once, and keeps it.
	a := h.dora(t, "02:00:00:00:00:77")
	h.clock.Advance(OfferHold + time.Second)
	if got := h.srv.LeaseCounts(); got[StateOffered] != 0 || got[StateBound] != 1 {
		t.Errorf("after the offer hold: %v, want 0 offered and 1 bound", got)
	}
	if again := h.dora(t, "02:00:00:00:00:77"); again != a {
		t.Errorf("real client moved from %s to %s", a, again)
	}
}

func TestFullReservationAndBoot(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	pi := []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00525069341131a000322ef8ed1045155b"))}
	offer := h.expect(t, msg(t, dhcpv4.MessageTypeDiscover, "dc:a6:32:2e:f8:ed", pi...), dhcpv4.MessageTypeOffer)
	if offer.YourIPAddr.String() != "127.0.0.50" {
		t.Errorf("pi-01 offered %v, want its reservation 127.0.0.50", offer.YourIPAddr)
	}
	if !offer.Options.Has(dhcpv4.OptionVendorSpecificInformation) {
		t.Error("pi offer without option 43")
	}
	// The Pi's REQUEST has no option 60 and, here, no option 97 either: the
	// DISCOVER's classification carries over.
	req := msg(t, dhcpv4.MessageTypeRequest, "dc:a6:32:2e:f8:ed",
		dhcpv4.OptServerIdentifier(ip("127.0.0.1")), dhcpv4.OptRequestedIPAddress(ip("127.0.0.50")))
	ack := h.expect(t, req, dhcpv4.MessageTypeAck)
	if ack.YourIPAddr.String() != "127.0.0.50" || !ack.Options.Has(dhcpv4.OptionVendorSpecificInformation) {
		t.Errorf("pi ACK: yiaddr %v, option 43 %v", ack.YourIPAddr, ack.Options.Has(dhcpv4.OptionVendorSpecificInformation))
	}
	if l, _ := h.store.lease("dc:a6:32:2e:f8:ed"); l.Node != "pi-01" {
		t.Errorf("lease node %q, want pi-01", l.Node)
	}
}

func TestFullRelay(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	m := msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:01")
	m.GatewayIPAddr = ip("127.0.0.2")
	r := h.expect(t, m, dhcpv4.MessageTypeOffer)
	if !r.GatewayIPAddr.Equal(ip("127.0.0.2")) {
		t.Errorf("relay reply giaddr %v, want 127.0.0.2", r.GatewayIPAddr)
	}
	out := msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:02")
	out.GatewayIPAddr = ip("10.9.9.9")
	h.expectNone(t, out)
}

func TestFullInform(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	m := msg(t, dhcpv4.MessageTypeInform, "02:00:00:00:00:01")
	m.ClientIPAddr = ip("127.0.0.7")
	r := h.expect(t, m, dhcpv4.MessageTypeAck)
	if !r.YourIPAddr.Equal(net.IPv4zero) || r.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || r.DomainName() != "rack.test" {
		t.Errorf("INFORM ACK: yiaddr %v, lease option %v, domain %q", r.YourIPAddr, r.Options.Has(dhcpv4.OptionIPAddressLeaseTime), r.DomainName())
	}
}

func TestFullLeasesSurviveRestart(t *testing.T) {
	st := newTestStore()
	h1 := startHarness(t, fullSettings(t), st)
	a := h1.dora(t, "02:00:00:00:00:01")
	h2 := startHarnessClock(t, fullSettings(t), st, h1.clock)
	if b := h2.dora(t, "02:00:00:00:00:02"); b == a {
		t.Errorf("after restart %s handed to a second machine", a)
	}
	if again := h2.dora(t, "02:00:00:00:00:01"); again != a {
		t.Errorf("after restart client got %s, want %s", again, a)
	}
}

func TestFullStoreFailureSendsNoAck(t *testing.T) {
	st := newTestStore()
	h := startHarness(t, fullSettings(t), st)
	offer := h.expect(t, msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:01"), dhcpv4.MessageTypeOffer)
	st.setFail(errInjected)
	h.expectNone(t, msg(t, dhcpv4.MessageTypeRequest, "02:00:00:00:00:01",
		dhcpv4.OptServerIdentifier(ip("127.0.0.1")), dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)))
	st.setFail(nil)
	if a := h.dora(t, "02:00:00:00:00:01"); a != offer.YourIPAddr.String() {
		t.Errorf("after store recovery got %s, want %s", a, offer.YourIPAddr)
	}
}
