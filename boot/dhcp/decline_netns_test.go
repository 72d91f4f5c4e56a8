package dhcp

import (
	"github.com/racklet/racklet-boot/internal/testutil"

	"context"
	"crypto/rand"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// lanClient speaks DHCP from a socket on port 68 of one namespace.
type lanClient struct {
	t    *testing.T
	conn net.PacketConn
	sid  net.IP
}

var bcast67 = &net.UDPAddr{IP: net.IPv4bcast, Port: 67}

// ask broadcasts m and returns the first reply to it, or nil after 1 s.
func (c *lanClient) ask(m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	m.SetBroadcast()
	if _, err := c.conn.WriteTo(m.ToBytes(), bcast67); err != nil {
		c.t.Fatalf("send %v: %v", m.MessageType(), err)
	}
	if r := collect(c.t, c.conn, m.TransactionID, 1, time.Second); len(r) == 1 {
		return r[0]
	}
	return nil
}

// send broadcasts m, which gets no answer (DECLINE).
func (c *lanClient) send(m *dhcpv4.DHCPv4) {
	if _, err := c.conn.WriteTo(m.ToBytes(), bcast67); err != nil {
		c.t.Fatalf("send %v: %v", m.MessageType(), err)
	}
}

// dora runs DISCOVER, OFFER, REQUEST, ACK for mac; "" when it got none.
func (c *lanClient) dora(mac string) string {
	offer := c.ask(msg(c.t, dhcpv4.MessageTypeDiscover, mac))
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		return ""
	}
	ack := c.ask(msg(c.t, dhcpv4.MessageTypeRequest, mac, dhcpv4.OptServerIdentifier(c.sid), dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		return ""
	}
	return ack.YourIPAddr.String()
}

func (c *lanClient) decline(mac, addr string) {
	c.send(msg(c.t, dhcpv4.MessageTypeDecline, mac, dhcpv4.OptServerIdentifier(c.sid), dhcpv4.OptRequestedIPAddress(ip(addr))))
}

func randomMAC() string {
	var b [6]byte
	rand.Read(b[:])
	b[0] = b[0]&^1 | 2 // unicast, locally administered
	return net.HardwareAddr(b[:]).String()
}

// serveLAN runs a full-mode server for nodes on the bridged LAN's server
// host (10.79.0.2, pool 10.79.0.100-139) with an in-memory store.
func serveLAN(t *testing.T, l *bridgedLAN, nodes ...testNode) (*Server, *testStore) {
	t.Helper()
	srv := New(Settings{Mode: ModeFull, ServerAddr: netip.MustParseAddr("10.79.0.2"), Subnet: netip.MustParsePrefix("10.79.0.0/24"),
		Pool:      &Pool{Start: netip.MustParseAddr("10.79.0.100"), End: netip.MustParseAddr("10.79.0.139")},
		LeaseTime: time.Hour, Unknown: UnknownDefault, Inventory: testInventory(nodes)}, Options{})
	st := newTestStore()
	srv.Leases, srv.Events = st, st
	conn := listenIn(t, l.srvNS, l.srvIf, 67)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, st
}

// udhcpcOn runs a real udhcpc on the client host as mac with extra
// arguments and returns the address it bound.
func udhcpcOn(t *testing.T, l *bridgedLAN, mac string, extra ...string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", l.cliNS, "link", "set", l.cliIf, "address", mac)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"netns", "exec", l.cliNS, "udhcpc", "-i", l.cliIf, "-f", "-q", "-n", "-t", "5", "-T", "2", "-s", script}, extra...)
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("udhcpc as %s: %v\n%s", mac, err, out)
	}
	for _, f := range strings.Fields(string(out)) {
		if a, ok := strings.CutPrefix(f, "ip="); ok {
			return a
		}
	}
	t.Fatalf("udhcpc as %s got no lease:\n%s", mac, out)
	return ""
}

// TestDeclineFloodFromLAN reruns the DECLINE attack from another host on
// the LAN (its own namespace): 500 random MACs declining their offers (the
// attack that used to empty the pool for 10 minutes), 40 random MACs
// binding and declining, spoofed DECLINEs for both known nodes' leases, and
// one MAC binding and declining ten times. Afterwards at least 75% of the
// pool must be usable (fresh clients on the client host lease it), and
// the known nodes, real udhcpc clients, get their addresses as before.
func TestDeclineFloodFromLAN(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces")
	testutil.NeedTool(t, "ip")
	testutil.NeedTool(t, "udhcpc")
	l := newBridgedLAN(t)
	atkNS, atkIf := l.rtrNS, l.rtrIf // the router's host plays the attacker
	pi1, pi2 := "dc:a6:32:00:00:01", "dc:a6:32:00:00:02"
	const poolSize = 40
	srv, _ := serveLAN(t, l,
		testNode{Name: "pi-01", MAC: mustMAC(t, pi1), Address: netip.MustParseAddr("10.79.0.10")},
		testNode{Name: "pi-02", MAC: mustMAC(t, pi2)})
	udhcpc := func(mac string) string { return udhcpcOn(t, l, mac) }
	addr1, addr2 := udhcpc(pi1), udhcpc(pi2)
	if addr1 != "10.79.0.10" {
		t.Fatalf("pi-01 got %s, want its reservation", addr1)
	}

	atk := &lanClient{t: t, conn: listenIn(t, atkNS, atkIf, 68), sid: ip("10.79.0.2")}
	defer atk.conn.Close()
	start := time.Now()
	offered := 0
	for range 500 { // the old attack: decline every offer
		mac := randomMAC()
		if o := atk.ask(msg(t, dhcpv4.MessageTypeDiscover, mac)); o != nil && o.MessageType() == dhcpv4.MessageTypeOffer {
			offered++
			atk.decline(mac, o.YourIPAddr.String())
		}
	}
	bound := 0
	for range poolSize { // bind, then decline
		mac := randomMAC()
		if a := atk.dora(mac); a != "" {
			bound++
			atk.decline(mac, a)
		}
	}
	for range 20 { // spoofed: the known nodes' MACs and addresses
		atk.decline(pi1, addr1)
		atk.decline(pi2, addr2)
	}
	one := randomMAC()
	for range 10 {
		if a := atk.dora(one); a != "" {
			atk.decline(one, a)
		}
	}
	time.Sleep(200 * time.Millisecond) // the last DECLINEs are handled
	quarantined := srv.LeaseCounts()[StateDeclined]
	t.Logf("attack from %s: %d offers declined, %d bound leases declined, 40 spoofed declines, 10 by one MAC, in %s; %d of %d pool addresses quarantined",
		atkNS, offered, bound, time.Since(start).Round(time.Millisecond), quarantined, poolSize)
	if offered < 450 || bound < poolSize/2 {
		t.Fatalf("the attack did not run: %d offers, %d bindings", offered, bound)
	}

	// The known nodes first, as real udhcpc clients.
	if a := udhcpc(pi1); a != "10.79.0.10" {
		t.Errorf("pi-01 got %s after the flood, want its reservation 10.79.0.10", a)
	}
	a2 := udhcpc(pi2)
	// Then fresh machines on the client host lease what is left.
	cli := &lanClient{t: t, conn: listenIn(t, l.cliNS, l.cliIf, 68), sid: ip("10.79.0.2")}
	defer cli.conn.Close()
	got := map[string]bool{a2: true} // pi-02's own pool address counts
	for range poolSize {
		if a := cli.dora(randomMAC()); a != "" {
			got[a] = true
		}
	}
	usable := len(got)
	t.Logf("after the flood: %d of %d pool addresses usable (%.0f%%); pi-02 got %s (was %s)",
		usable, poolSize, 100*float64(usable)/poolSize, a2, addr2)
	if a2 != addr2 {
		t.Errorf("pi-02 moved from %s to %s: spoofed DECLINEs took its lease", addr2, a2)
	}
	if usable*4 < poolSize*3 {
		t.Errorf("%d of %d pool addresses usable after a DECLINE flood, want at least 75%%", usable, poolSize)
	}
	if q := srv.LeaseCounts()[StateDeclined]; q > poolSize/4 {
		t.Errorf("%d addresses quarantined, past a quarter of the pool", q)
	}
}

// TestSpoofedOption97FromLAN: a real Pi (udhcpc with the Pi's vendor class
// and option 97) boots; another host on the LAN replays its option 97, as
// seen in the Pi's broadcasts, from its own MAC. It gets neither the Pi's
// reservation nor its node record, and the node's log says what happened.
func TestSpoofedOption97FromLAN(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces")
	testutil.NeedTool(t, "ip")
	testutil.NeedTool(t, "udhcpc")
	l := newBridgedLAN(t)
	_, st := serveLAN(t, l, testNode{Name: "pi-01", Serial: "5b154510", Address: netip.MustParseAddr("10.79.0.10")})
	const real97 = "00525069341131a000322ef8ed1045155b" // a real Pi 4: MAC dc:a6:32:2e:f8:ed, serial 5b154510
	if a := udhcpcOn(t, l, "dc:a6:32:2e:f8:ed", "-V", piVC, "-x", "0x61:"+real97); a != "10.79.0.10" {
		t.Fatalf("the real Pi got %s, want its reservation 10.79.0.10", a)
	}
	waitNode(t, st, "pi-01", "dc:a6:32:2e:f8:ed")

	atk := &lanClient{t: t, conn: listenIn(t, l.rtrNS, l.rtrIf, 68), sid: ip("10.79.0.2")}
	defer atk.conn.Close()
	for _, mac := range []string{"dc:a6:32:66:66:66", "02:00:00:00:66:66"} {
		o := atk.ask(msg(t, dhcpv4.MessageTypeDiscover, mac, dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, real97))))
		if o == nil {
			t.Fatalf("no offer to the replayed option 97 from %s", mac)
		}
		if o.YourIPAddr.String() == "10.79.0.10" {
			t.Errorf("a replayed option 97 from %s was offered pi-01's reservation", mac)
		}
	}
	e := waitEvent(t, st, "pi-01", "dhcp.identity-conflict")
	t.Logf("pi-01's log: %s: %s", e.Type, e.Detail)
	time.Sleep(200 * time.Millisecond) // node records are written off the reply path
	if n := st.node("pi-01"); n.MAC != "dc:a6:32:2e:f8:ed" {
		t.Errorf("pi-01's record names %s after the replay, want the real Pi's MAC", n.MAC)
	}
}
