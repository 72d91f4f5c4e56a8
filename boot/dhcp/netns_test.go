package dhcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
	"golang.org/x/sys/unix"
)

// lan is a two-namespace LAN: the server side and the client side of one
// veth pair, both in namespaces this test made.
type lan struct {
	srvNS, cliNS string
	srvIf, cliIf string
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLAN(t testing.TB) *lan {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces")
	testutil.NeedTool(t, "ip")
	var b [3]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	l := &lan{srvNS: "rkd-s-" + id, cliNS: "rkd-c-" + id, srvIf: "rkd" + id + "s", cliIf: "rkd" + id + "c"}
	run(t, "ip", "netns", "add", l.srvNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.srvNS).Run() })
	run(t, "ip", "netns", "add", l.cliNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.cliNS).Run() })
	run(t, "ip", "link", "add", l.srvIf, "netns", l.srvNS, "type", "veth", "peer", "name", l.cliIf, "netns", l.cliNS)
	run(t, "ip", "-n", l.srvNS, "addr", "add", "10.77.0.1/24", "dev", l.srvIf)
	run(t, "ip", "-n", l.srvNS, "link", "set", l.srvIf, "up")
	run(t, "ip", "-n", l.srvNS, "link", "set", "lo", "up")
	run(t, "ip", "-n", l.cliNS, "link", "set", l.cliIf, "up")
	return l
}

// listenIn opens the DHCP socket inside namespace ns; the socket keeps
// that namespace after the thread switches back.
func listenIn(t testing.TB, ns, iface string, port int) net.PacketConn {
	t.Helper()
	type result struct {
		c   net.PacketConn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		c, lerr := Listen(context.Background(), iface, port)
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			ch <- result{c: c, err: lerr}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c: c, err: lerr}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in %s: %v", ns, r.err)
	}
	return r.c
}

// udhcpcScript prints the variables udhcpc hands its script.
const udhcpcScript = `#!/bin/sh
[ "$1" = bound ] || exit 0
echo "ip=$ip mask=$mask router=$router dns=$dns siaddr=$siaddr boot_file=$boot_file opt43=$opt43 opt60=$opt60"
`

func TestUdhcpcGetsLease(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces")
	testutil.NeedTool(t, "ip")
	testutil.NeedTool(t, "udhcpc")
	l := newLAN(t)
	inv := testInventory{{Name: "pi-01", Serial: "5b154510"}}
	st := Settings{
		Mode:       ModeFull,
		ServerAddr: netip.MustParseAddr("10.77.0.1"),
		Subnet:     netip.MustParsePrefix("10.77.0.0/24"),
		Pool:       &Pool{Start: netip.MustParseAddr("10.77.0.100"), End: netip.MustParseAddr("10.77.0.150")},
		Router:     netip.MustParseAddr("10.77.0.1"),
		DNS:        []netip.Addr{netip.MustParseAddr("10.77.0.1")},
		LeaseTime:  time.Hour,
		Unknown:    UnknownDefault,
		Inventory:  inv,
	}
	srv := New(st, Options{})
	store := newTestStore()
	srv.Leases, srv.Events = store, store
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
	script := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(script, []byte(udhcpcScript), 0o755); err != nil {
		t.Fatal(err)
	}
	udhcpc := func(extra ...string) string {
		args := append([]string{"ip", "netns", "exec", l.cliNS, "udhcpc", "-i", l.cliIf, "-f", "-q", "-n",
			"-t", "5", "-T", "2", "-s", script}, extra...)
		cctx, ccancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer ccancel()
		out, err := exec.CommandContext(cctx, args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("udhcpc: %v\n%s", err, out)
		}
		t.Logf("udhcpc %v:\n%s", extra, out)
		return string(out)
	}

	out := udhcpc()
	if !strings.Contains(out, "ip=10.77.0.100 mask=24 router=10.77.0.1 dns=10.77.0.1") {
		t.Errorf("plain client: udhcpc output lacks the lease:\n%s", out)
	}
	mac := run(t, "ip", "netns", "exec", l.cliNS, "cat", "/sys/class/net/"+l.cliIf+"/address")
	if lease, ok := store.lease(strings.TrimSpace(mac)); !ok || lease.Addr.String() != "10.77.0.100" {
		t.Errorf("stored lease %+v (found %v), want 10.77.0.100", lease, ok)
	}

	// Now as a Pi 4: its MAC, vendor class and option 97; udhcpc asks for
	// option 43 and shows what it got.
	run(t, "ip", "-n", l.cliNS, "link", "set", l.cliIf, "address", "dc:a6:32:2e:f8:ed")
	out = udhcpc("-V", piVC, "-x", "0x61:00525069341131a000322ef8ed1045155b", "-O", "43", "-O", "60")
	want43 := "0601030a04005058450914000011" + hex.EncodeToString([]byte(DefaultPiMenu)) + "ff"
	for _, w := range []string{"ip=10.77.0.101", "siaddr=10.77.0.1", "opt43=" + want43} {
		if !strings.Contains(out, w) {
			t.Errorf("pi client: udhcpc output lacks %q:\n%s", w, out)
		}
	}
	if lease, ok := store.lease("dc:a6:32:2e:f8:ed"); !ok || lease.Node != "pi-01" {
		t.Errorf("pi lease %+v (found %v), want node pi-01", lease, ok)
	}
}
