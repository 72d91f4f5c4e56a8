package dhcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklet/racklet-boot/internal/testutil"
	"golang.org/x/sys/unix"
)

// bridgedLAN is a LAN of namespaces joined by a bridge in its own
// namespace: a router (dnsmasq), racklet-boot and a client.
type bridgedLAN struct {
	id                         string
	lanNS, rtrNS, srvNS, cliNS string
	rtrIf, srvIf, cliIf        string
}

func newBridgedLAN(t *testing.T) *bridgedLAN {
	t.Helper()
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	l := &bridgedLAN{id: id, lanNS: "rkd-l-" + id, rtrNS: "rkd-r-" + id, srvNS: "rkd-s-" + id, cliNS: "rkd-c-" + id,
		rtrIf: "rkd" + id + "r", srvIf: "rkd" + id + "s", cliIf: "rkd" + id + "c"}
	for _, ns := range []string{l.lanNS, l.rtrNS, l.srvNS, l.cliNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	br := "rkd" + id + "b"
	run(t, "ip", "-n", l.lanNS, "link", "add", br, "type", "bridge")
	run(t, "ip", "-n", l.lanNS, "link", "set", br, "up")
	for i, end := range []struct{ ns, ifc string }{{l.rtrNS, l.rtrIf}, {l.srvNS, l.srvIf}, {l.cliNS, l.cliIf}} {
		port := "rkd" + id + "p" + string(rune('0'+i))
		run(t, "ip", "link", "add", end.ifc, "netns", end.ns, "type", "veth", "peer", "name", port, "netns", l.lanNS)
		run(t, "ip", "-n", l.lanNS, "link", "set", port, "master", br)
		run(t, "ip", "-n", l.lanNS, "link", "set", port, "up")
		run(t, "ip", "-n", end.ns, "link", "set", end.ifc, "up")
		run(t, "ip", "-n", end.ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "-n", l.rtrNS, "addr", "add", "10.79.0.1/24", "dev", l.rtrIf)
	run(t, "ip", "-n", l.srvNS, "addr", "add", "10.79.0.2/24", "dev", l.srvIf)
	return l
}

// collect reads replies with transaction ID xid for up to d, until it has want.
func collect(t *testing.T, c net.PacketConn, xid dhcpv4.TransactionID, want int, d time.Duration) []*dhcpv4.DHCPv4 {
	t.Helper()
	var out []*dhcpv4.DHCPv4
	deadline := time.Now().Add(d)
	buf := make([]byte, 4096)
	for range 100 {
		c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m, err := dhcpv4.FromBytes(buf[:n]); err == nil && m.TransactionID == xid && m.OpCode == dhcpv4.OpcodeBootReply {
			out = append(out, m)
		}
		if len(out) >= want {
			break
		}
	}
	return out
}

func TestProxyBesideDnsmasq(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces")
	testutil.NeedTool(t, "ip")
	testutil.NeedTool(t, "dnsmasq")
	l := newBridgedLAN(t)
	work := t.TempDir()
	os.Chmod(work, 0o755)
	rtr := exec.Command("ip", "netns", "exec", l.rtrNS, "dnsmasq", "-d", "-C", "/dev/null", "--port=0",
		"--interface="+l.rtrIf, "--bind-interfaces", "--dhcp-range=10.79.0.100,10.79.0.150,1h", "--no-ping",
		"--dhcp-leasefile="+filepath.Join(work, "leases"), "--pid-file="+filepath.Join(work, "pid"))
	if err := rtr.Start(); err != nil {
		t.Fatalf("start dnsmasq: %v", err)
	}
	t.Cleanup(func() { rtr.Process.Kill(); rtr.Wait() })

	mac := "52:54:00:99:00:a1"
	run(t, "ip", "-n", l.cliNS, "link", "set", l.cliIf, "address", mac)
	inv := testInventory{{Name: "pc-01", MAC: mustMAC(t, mac)}}
	srv := New(Settings{Mode: ModeProxy, ServerAddr: netip.MustParseAddr("10.79.0.2"), HTTPPort: 8080,
		Unknown: UnknownIgnore, Inventory: inv}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// ListenAndServe opens its sockets (67 and 4011) on this goroutine's
	// thread, moved into the server namespace for good: the thread is not
	// unlocked, so it ends with the goroutine.
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(filepath.Join("/run/netns", l.srvNS))
		if err == nil {
			err = unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET)
			ns.Close()
		}
		if err != nil {
			done <- err
			return
		}
		done <- srv.ListenAndServe(ctx, l.srvIf)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenAndServe: %v", err)
		}
	})
	time.Sleep(500 * time.Millisecond) // let dnsmasq bind

	cli := listenIn(t, l.cliNS, l.cliIf, 68)
	defer cli.Close()
	disc := discoverWith(t, mac, dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"), arch(7))
	disc.SetBroadcast()
	bcast := &net.UDPAddr{IP: net.IPv4bcast, Port: 67}
	var offers []*dhcpv4.DHCPv4
	for try := 0; try < 3 && len(offers) < 2; try++ {
		if _, err := cli.WriteTo(disc.ToBytes(), bcast); err != nil {
			t.Fatalf("send DISCOVER: %v", err)
		}
		t.Logf("DISCOVER try %d", try+1)
		offers = collect(t, cli, disc.TransactionID, 2, 2*time.Second)
	}
	var router, proxy *dhcpv4.DHCPv4
	for _, o := range offers {
		switch o.ServerIdentifier().String() {
		case "10.79.0.1":
			router = o
		case "10.79.0.2":
			proxy = o
		}
	}
	if router == nil || proxy == nil {
		t.Fatalf("got %d offers (router %v, proxy %v), want one from each", len(offers), router != nil, proxy != nil)
	}
	if router.YourIPAddr.Equal(net.IPv4zero) {
		t.Errorf("router offered no address")
	}
	if !proxy.YourIPAddr.Equal(net.IPv4zero) || proxy.Options.Has(dhcpv4.OptionIPAddressLeaseTime) ||
		proxy.ClassIdentifier() != "PXEClient" || proxy.BootFileName != "bootx64.efi" {
		t.Errorf("proxy offer: yiaddr %v, lease option %v, option 60 %q, file %q",
			proxy.YourIPAddr, proxy.Options.Has(dhcpv4.OptionIPAddressLeaseTime), proxy.ClassIdentifier(), proxy.BootFileName)
	}

	// Take the router's address, then ask the proxy on port 4011 as PXE does.
	yi := router.YourIPAddr.String()
	run(t, "ip", "-n", l.cliNS, "addr", "add", yi+"/24", "dev", l.cliIf)
	req := msg(t, dhcpv4.MessageTypeRequest, mac, dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"), arch(7))
	req.ClientIPAddr = router.YourIPAddr
	if _, err := cli.WriteTo(req.ToBytes(), &net.UDPAddr{IP: net.IPv4(10, 79, 0, 2), Port: PXEPort}); err != nil {
		t.Fatalf("send REQUEST to 4011: %v", err)
	}
	acks := collect(t, cli, req.TransactionID, 1, 2*time.Second)
	if len(acks) != 1 || acks[0].MessageType() != dhcpv4.MessageTypeAck || acks[0].BootFileName != "bootx64.efi" {
		t.Fatalf("port 4011: got %d replies, want one ACK with bootx64.efi: %v", len(acks), acks)
	}
}
