package server

import (
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/pisim"
)

// rackLAN is a switch with the server's and the rack's namespaces on it,
// removed when the test ends; the server's sockets are opened by srv.
type rackLAN struct {
	srv  *netlab.Thread
	rack netlab.Namespace
}

func newRackLAN(t *testing.T) *rackLAN {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces and macvlans")
	testutil.NeedTool(t, "ip")
	if err := netlab.Available(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	ctx := t.Context()
	id := netlab.Suffix(6)
	sw, err := netlab.NewSwitch(ctx, "rkt-sw-"+id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close)
	l := &rackLAN{}
	srvNS, err := netlab.AddNamespace(ctx, "rkt-srv-"+id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srvNS.Delete)
	if l.rack, err = netlab.AddNamespace(ctx, "rkt-rack-"+id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.rack.Delete)
	if err := sw.Attach(ctx, srvNS, "eth0", netip.MustParsePrefix("10.43.0.2/24")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, l.rack, "eth0", netip.Prefix{}); err != nil {
		t.Fatal(err)
	}
	if l.srv, err = srvNS.Thread(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.srv.Close)
	return l
}

// fullConfig serves the Pis in full DHCP mode on the rack LAN: pi-01 from
// boot4, pi-02 from boot5.
func fullConfig(dir, boot4, boot5 string, pis []*pisim.Pi) string {
	return `apiVersion: racklet.io/v1alpha1
kind: Rack
server: {interface: eth0, address: 10.43.0.2, dataDir: ` + filepath.Join(dir, "data") + `}
dhcp: {mode: full, pool: {start: 10.43.0.100, end: 10.43.0.150}, router: 10.43.0.2}
nodes:
  - {name: pi-01, kind: rpi4, serial: "` + pis[0].Name() + `", mac: "` + pis[0].MAC.String() + `", boot: {dir: ` + boot4 + `}}
  - {name: pi-02, kind: rpi5, serial: "` + pis[1].Name() + `", boot: {dir: ` + boot5 + `}}
`
}

// bootRack boots the Pis in the rack namespace and fails the test unless
// each loads its kernel.
func bootRack(t *testing.T, l *rackLAN, pis []*pisim.Pi) []*pisim.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	r := &pisim.Rack{Transport: &pisim.MacvlanTransport{Parent: "eth0", NetNS: string(l.rack), NamePrefix: "rkt"}, Pis: pis}
	results := r.Run(ctx)
	for _, res := range results {
		if !res.KernelLoaded {
			t.Fatalf("pi %s: %s %s\n%s", res.Serial, res.Verdict, res.Error, res)
		}
	}
	return results
}

// served returns the bytes of the Pi's complete read of file, -1 for none.
func served(res *pisim.Result, file string) int64 {
	for _, s := range res.Steps {
		if strings.HasSuffix(s.File, file) && s.Op == "tftp-read" && s.Result == "ok" {
			return s.Bytes
		}
	}
	return -1
}

// nobody is a neighbour table that knows no address.
type nobody struct{}

func (nobody) MACForAddr(context.Context, netip.Addr) (net.HardwareAddr, bool) { return nil, false }

// TestServeRackInNamespace drives boot/server directly, with no binary: it
// starts a server whose sockets live in a network namespace, boots a Pi 4
// and a Pi 5 (pisim) from another namespace through DHCP and TFTP, reloads
// the config to give pi-01 another boot tree, boots again, and stops. The
// Pi 4 uses a fixed TFTP prefix ("rack1/", TFTP_PREFIX=1), so the server
// can only tell who it is from its address: DHCP's lease table.
func TestServeRackInNamespace(t *testing.T) {
	l := newRackLAN(t)
	dir := t.TempDir()
	tree4a, tree4b, tree5 := bootTree(t, dir, "a", "alpha"), bootTree(t, dir, "b", "bravo"), bootTree(t, dir, "c", "charlie")
	pis, err := pisim.RackOf(2, "mixed", 42)
	if err != nil {
		t.Fatal(err)
	}
	pis[0].Prefix, pis[0].PrefixStr = pisim.PrefixString, "rack1/"
	// No neighbour table: only DHCP's lease table can name pi-01 by address.
	s, err := New(parseConfig(t, dir, fullConfig(dir, tree4a, tree5, pis)), Options{Network: l.srv.Do, Neighbours: nobody{}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)

	first := bootRack(t, l, pis)
	if n := served(first[0], "kernel8.img"); n != int64(len("k4alpha")*4096) {
		t.Errorf("pi-01 kernel: %d bytes, want tree a's", n)
	}
	if first[0].PrefixDropped || !strings.HasPrefix(first[0].Steps[len(first[0].Steps)-1].File, "rack1/") {
		t.Errorf("pi-01 did not keep its rack1/ prefix:\n%s", first[0])
	}

	if err := s.Reload(t.Context(), parseConfig(t, dir, fullConfig(dir, tree4b, tree5, pis))); err != nil {
		t.Fatal(err)
	}
	second := bootRack(t, l, pis)
	if n := served(second[0], "kernel8.img"); n != int64(len("k4bravo")*4096) {
		t.Errorf("pi-01 kernel after reload: %d bytes, want tree b's", n)
	}
	if n := served(second[1], "kernel_2712.img"); n != int64(len("k5charlie")*4096) {
		t.Errorf("pi-02 kernel after reload: %d bytes, want tree c's", n)
	}
	if first[0].Address != second[0].Address {
		t.Errorf("pi-01 got %s, then %s: its lease was not kept", first[0].Address, second[0].Address)
	}

	nodes, err := s.Nodes(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Lease == nil || !n.Known {
			t.Errorf("node %s: known %v, lease %+v; want a known node with a lease", n.Key, n.Known, n.Lease)
		}
	}
}
