package dhcp

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklet/racklet-boot/store"
)

// declineSettings: a pool of 40 (a quarter is 10), a Pi known by serial
// with a reservation (pi-01), a node pinned to a MAC with a reservation
// (pc-01) and a Pi pinned to both serial and MAC (pi-03).
func declineSettings(t testing.TB) Settings {
	st := fullSettings(t)
	st.Inventory = testInventory{
		{Name: "pi-01", Serial: "5b154510", Address: netip.MustParseAddr("127.0.0.50")},
		{Name: "pc-01", MAC: mustMAC(t, "52:54:00:99:00:a1"), Address: netip.MustParseAddr("127.0.0.51")},
		{Name: "pi-03", Serial: "0000beef", MAC: mustMAC(t, "dc:a6:32:00:be:ef")},
	}
	st.Pool = &Pool{Start: netip.MustParseAddr("127.0.0.100"), End: netip.MustParseAddr("127.0.0.139")}
	return st
}

// piOpt97 is a Pi 4's option 97 for serial (8 hex digits) carrying the
// low four bytes of mac.
func piOpt97(t testing.TB, serial, mac string) dhcpv4.Option {
	t.Helper()
	m := mustMAC(t, mac)
	s, err := hex.DecodeString(serial)
	if err != nil || len(s) != 4 {
		t.Fatalf("serial %q", serial)
	}
	b := append([]byte{0, 'R', 'P', 'i', '4', 0x11, 0x31, 0xa0, 0x00}, m[2:6]...)
	return opt97(append(b, s[3], s[2], s[1], s[0]))
}

func (h *harness) decline(t testing.TB, mac, addr string, opts ...dhcpv4.Option) {
	t.Helper()
	h.expectNone(t, msg(t, dhcpv4.MessageTypeDecline, mac, append([]dhcpv4.Option{dhcpv4.OptRequestedIPAddress(ip(addr))}, opts...)...))
}

func (h *harness) quarantined(addr string) bool {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	l := h.srv.table.byAddr[netip.MustParseAddr(addr)]
	return l != nil && l.State == StateDeclined && l.Expiry.After(h.clock.Now())
}

func (h *harness) quarantineCount() int {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	return h.srv.table.quarantined(h.clock.Now())
}

var sid = dhcpv4.OptServerIdentifier(ip("127.0.0.1"))

func TestDeclineRules(t *testing.T) {
	tests := map[string]struct {
		run            func(t *testing.T, h *harness) (declined string)
		quarantined    bool
		leaseSurvives  string // MAC whose bound lease must still be there
		wantEventOfKey string // a dhcp.decline-* event recorded under this node key
	}{
		"offered, never bound": {run: func(t *testing.T, h *harness) string {
			offer := h.expect(t, msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:01"), dhcpv4.MessageTypeOffer)
			h.decline(t, "02:00:00:00:00:01", offer.YourIPAddr.String(), sid)
			return offer.YourIPAddr.String()
		}, wantEventOfKey: "mac:02:00:00:00:00:01"},
		"another machine's lease": {run: func(t *testing.T, h *harness) string {
			a := h.dora(t, "02:00:00:00:00:01")
			h.decline(t, "02:00:00:00:00:02", a, sid)
			return a
		}, leaseSurvives: "02:00:00:00:00:01"},
		"no server identifier": {run: func(t *testing.T, h *harness) string {
			a := h.dora(t, "02:00:00:00:00:01")
			h.decline(t, "02:00:00:00:00:01", a)
			return a
		}, leaseSurvives: "02:00:00:00:00:01"},
		"another server": {run: func(t *testing.T, h *harness) string {
			a := h.dora(t, "02:00:00:00:00:01")
			h.decline(t, "02:00:00:00:00:01", a, dhcpv4.OptServerIdentifier(ip("127.0.0.9")))
			return a
		}, leaseSurvives: "02:00:00:00:00:01"},
		"the holder of the bound lease": {run: func(t *testing.T, h *harness) string {
			a := h.dora(t, "02:00:00:00:00:01")
			h.decline(t, "02:00:00:00:00:01", a, sid)
			return a
		}, quarantined: true},
		"a known node (spoofable)": {run: func(t *testing.T, h *harness) string {
			a := h.dora(t, "52:54:00:99:00:a1")
			h.decline(t, "52:54:00:99:00:a1", a, sid)
			if again := h.dora(t, "52:54:00:99:00:a1"); again != "127.0.0.51" {
				t.Errorf("pc-01 got %s after a decline, want its reservation 127.0.0.51", again)
			}
			return a
		}, leaseSurvives: "52:54:00:99:00:a1", wantEventOfKey: "pc-01"},
		"a third quarantine by one MAC within the hold": {run: func(t *testing.T, h *harness) string {
			var a string
			for range DeclinesPerMAC + 1 {
				a = h.dora(t, "02:00:00:00:00:01")
				h.decline(t, "02:00:00:00:00:01", a, sid)
			}
			if n := h.quarantineCount(); n != DeclinesPerMAC {
				t.Errorf("%d addresses quarantined by one MAC, want %d", n, DeclinesPerMAC)
			}
			return a
		}, wantEventOfKey: "mac:02:00:00:00:00:01"},
		"past a quarter of the pool": {run: func(t *testing.T, h *harness) string {
			var a string
			for i := range 15 {
				mac := fmt.Sprintf("02:00:00:00:01:%02x", i)
				a = h.dora(t, mac)
				h.decline(t, mac, a, sid)
			}
			if n := h.quarantineCount(); n != 10 {
				t.Errorf("%d of 40 pool addresses quarantined, want 10 (a quarter)", n)
			}
			return a
		}, wantEventOfKey: "mac:02:00:00:00:01:0e"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := newTestStore()
			h := startHarness(t, declineSettings(t), st)
			a := tc.run(t, h)
			if got := h.quarantined(a); got != tc.quarantined {
				t.Errorf("%s quarantined = %v, want %v", a, got, tc.quarantined)
			}
			if tc.leaseSurvives != "" {
				if l, ok := st.lease(tc.leaseSurvives); !ok || l.Addr.String() != a || l.State != StateBound {
					t.Errorf("lease of %s = %+v (%v), want it bound to %s still", tc.leaseSurvives, l, ok, a)
				}
			}
			if tc.wantEventOfKey != "" {
				waitEvent(t, st, tc.wantEventOfKey, "dhcp.decline-")
			}
		})
	}
}

// waitEvent waits (bounded) for an event of node key whose type starts with typ.
func waitEvent(t *testing.T, st *testStore, key, typ string) store.Event {
	t.Helper()
	for range 250 {
		for _, e := range st.events(key) {
			if e.Node == key && strings.HasPrefix(e.Type, typ) {
				return e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s* event for %s in %v", typ, key, st.events(key))
	return store.Event{}
}

// TestSpoofedOption97 sends requests carrying a known Pi's option 97 from
// other MACs: a copy whose MAC bytes do not match the sender, and a
// request from a MAC the config does not name for the node, are not that
// node (no reservation, no record change) and leave a dhcp.identity-conflict
// event on the node. A node the config pins by serial only follows its
// option 97 to a new MAC (a board swap), with a node.mac-changed event.
func TestSpoofedOption97(t *testing.T) {
	st := newTestStore()
	h := startHarness(t, declineSettings(t), st)
	pi := []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0)}
	if a := h.dora(t, "dc:a6:32:2e:f8:ed", append(pi, piOpt97(t, "5b154510", "dc:a6:32:2e:f8:ed"))...); a != "127.0.0.50" {
		t.Fatalf("the real pi-01 got %s, want its reservation", a)
	}
	waitNode(t, st, "pi-01", "dc:a6:32:2e:f8:ed")

	// A copy of pi-01's option 97 (the real MAC's bytes) from another MAC.
	if a := h.dora(t, "dc:a6:32:66:66:66", append(pi, piOpt97(t, "5b154510", "dc:a6:32:2e:f8:ed"))...); a == "127.0.0.50" {
		t.Errorf("a copied option 97 got pi-01's reservation")
	}
	e := waitEvent(t, st, "pi-01", "dhcp.identity-conflict")
	if !strings.Contains(e.Detail, "dc:a6:32:66:66:66") {
		t.Errorf("conflict event %q does not name the sender", e.Detail)
	}
	// pi-03 is pinned to serial and MAC: its serial from another MAC, with
	// option 97 made to match that MAC, is not pi-03.
	h.dora(t, "dc:a6:32:77:77:77", append(pi, piOpt97(t, "0000beef", "dc:a6:32:77:77:77"))...)
	waitEvent(t, st, "pi-03", "dhcp.identity-conflict")
	if n := st.node("pi-03"); n.MAC != "" && n.MAC != "dc:a6:32:00:be:ef" {
		t.Errorf("pi-03's record moved to %s", n.MAC)
	}
	if n := st.node("pi-01"); n.MAC != "dc:a6:32:2e:f8:ed" {
		t.Errorf("pi-01's record names %s after spoofed requests, want its own MAC", n.MAC)
	}

	// pi-01 is known by serial only: a Pi with that serial on a new board
	// (option 97 matching its MAC) takes the record over, never silently.
	h.clock.Advance(2 * time.Hour) // the old reservation lease expired
	h.dora(t, "dc:a6:32:01:02:03", append(pi, piOpt97(t, "5b154510", "dc:a6:32:01:02:03"))...)
	e = waitEvent(t, st, "pi-01", "node.mac-changed")
	if !strings.Contains(e.Detail, "dc:a6:32:01:02:03") || !strings.Contains(e.Detail, "dc:a6:32:2e:f8:ed") {
		t.Errorf("mac change event %q does not name both MACs", e.Detail)
	}
}

// waitNode waits (bounded) for the node record key to name mac.
func waitNode(t *testing.T, st *testStore, key, mac string) {
	t.Helper()
	for range 250 {
		if n := st.node(key); n.MAC == mac {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node record %s never named %s: %+v", key, mac, st.node(key))
}
