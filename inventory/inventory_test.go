package inventory

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/racklet/racklet-boot/rack"
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func testConfig() *rack.Config {
	return &rack.Config{Nodes: []rack.Node{
		{Name: "pi-01", Kind: rack.KindRPi4, Serial: "5b154510", MAC: mustMAC("dc:a6:32:00:00:01"), Address: netip.MustParseAddr("10.0.0.11"), HATKey: "ed25519:AAAA"},
		{Name: "pi-02", Kind: rack.KindRPi5, Serial: "0000000A"},
		{Name: "pc-01", Kind: rack.KindBIOS, MAC: mustMAC("52:54:00:99:00:a1")},
	}}
}

func TestLookups(t *testing.T) {
	inv := New(testConfig())
	for name, tc := range map[string]struct {
		find func() (*rack.Node, bool)
		want string
	}{
		"by name":                      {func() (*rack.Node, bool) { return inv.ByName("pc-01") }, "pc-01"},
		"by mac":                       {func() (*rack.Node, bool) { return inv.ByMAC(mustMAC("DC:A6:32:00:00:01")) }, "pi-01"},
		"by serial any case":           {func() (*rack.Node, bool) { return inv.BySerial("5B154510") }, "pi-01"},
		"serial written in upper case": {func() (*rack.Node, bool) { return inv.BySerial("0000000a") }, "pi-02"},
		"by reserved address":          {func() (*rack.Node, bool) { return inv.ByAddr(netip.MustParseAddr("10.0.0.11")) }, "pi-01"},
		"unknown mac":                  {func() (*rack.Node, bool) { return inv.ByMAC(mustMAC("dc:a6:32:00:00:99")) }, ""},
		"no mac":                       {func() (*rack.Node, bool) { return inv.ByMAC(nil) }, ""},
		"unknown name":                 {func() (*rack.Node, bool) { return inv.ByName("nope") }, ""},
		"empty serial":                 {func() (*rack.Node, bool) { return inv.BySerial("") }, ""},
		"unreserved address":           {func() (*rack.Node, bool) { return inv.ByAddr(netip.MustParseAddr("10.0.0.12")) }, ""},
	} {
		t.Run(name, func(t *testing.T) {
			n, ok := tc.find()
			got := ""
			if ok {
				got = n.Name
			}
			if got != tc.want {
				t.Errorf("found %q, want %q", got, tc.want)
			}
		})
	}
	if keys := inv.HATKeys(); len(keys) != 1 || keys["pi-01"] != "ed25519:AAAA" {
		t.Errorf("HATKeys() = %v, want pi-01's key only", keys)
	}
}

func TestPrefix(t *testing.T) {
	cfg := testConfig()
	for i, want := range []string{"dc-a6-32-00-00-01", "0000000a", "52-54-00-99-00-a1"} {
		if got := Prefix(&cfg.Nodes[i]); got != want {
			t.Errorf("Prefix(%s) = %q, want %q", cfg.Nodes[i].Name, got, want)
		}
	}
	if got := Prefix(&rack.Node{Name: "anon"}); got != "" {
		t.Errorf("Prefix of a node without MAC or serial = %q, want none", got)
	}
}

// TestLiveSwap: readers racing a reload see one inventory or the other,
// never a mix, and an empty Live knows nobody.
func TestLiveSwap(t *testing.T) {
	var empty Live
	if _, ok := empty.Load().ByName("pi-01"); ok {
		t.Fatal("an empty Live knows pi-01")
	}
	a := testConfig()
	b := &rack.Config{Nodes: []rack.Node{{Name: "pi-01", Serial: "11111111"}}}
	live := NewLive(a)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 1000 {
			live.Store(New([]*rack.Config{a, b}[i%2]))
		}
	}()
	for range 1000 {
		inv := live.Load()
		n, ok := inv.ByName("pi-01")
		if !ok {
			t.Fatal("pi-01 missing during a reload")
		}
		if s, _ := inv.BySerial(n.Serial); s != n {
			t.Fatalf("serial %s of pi-01 leads to another node: a mixed inventory", n.Serial)
		}
	}
	wg.Wait()
}
