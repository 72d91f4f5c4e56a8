package pisim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// run runs a command with a bounded time and fails the test on error.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// testLAN is a private LAN in network namespaces: the server namespace
// has 10.77.0.1/24 on SrvDev, the client namespace only brings CliIf up (the
// simulated Pis put their macvlans on it). With a router, a third namespace
// holds 10.77.0.254/24 and the server namespace bridges all three.
type testLAN struct {
	SrvNS, CliNS, RtrNS  string
	SrvDev, CliIf, RtrIf string
}

// newTestLAN creates the namespaces with names unique to this test run and
// removes them when the test ends (it needs root and ip(8)).
func newTestLAN(t *testing.T, withRouter bool) *testLAN {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces")
	testutil.NeedTool(t, "ip")
	suf := fmt.Sprintf("%04x%02x", os.Getpid()&0xffff, rand.IntN(256))
	l := &testLAN{SrvNS: "rkps" + suf, CliNS: "rkpc" + suf, SrvDev: "rkpa" + suf, CliIf: "rkpb" + suf}
	nss := []string{l.SrvNS, l.CliNS}
	if withRouter {
		l.RtrNS, l.RtrIf = "rkpr"+suf, "rkpd"+suf
		nss = append(nss, l.RtrNS)
	}
	for _, ns := range nss {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", l.SrvDev, "netns", l.SrvNS, "type", "veth", "peer", "name", l.CliIf, "netns", l.CliNS)
	run(t, "ip", "-n", l.CliNS, "link", "set", l.CliIf, "up")
	if withRouter {
		br, rtrPeer := "rkpg"+suf, "rkpe"+suf
		run(t, "ip", "link", "add", l.RtrIf, "netns", l.RtrNS, "type", "veth", "peer", "name", rtrPeer, "netns", l.SrvNS)
		run(t, "ip", "-n", l.SrvNS, "link", "add", br, "type", "bridge", "forward_delay", "0")
		for _, port := range []string{l.SrvDev, rtrPeer} {
			run(t, "ip", "-n", l.SrvNS, "link", "set", port, "master", br)
			run(t, "ip", "-n", l.SrvNS, "link", "set", port, "up")
		}
		run(t, "ip", "-n", l.RtrNS, "addr", "add", "10.77.0.254/24", "dev", l.RtrIf)
		run(t, "ip", "-n", l.RtrNS, "link", "set", l.RtrIf, "up")
		l.SrvDev = br
	}
	run(t, "ip", "-n", l.SrvNS, "addr", "add", "10.77.0.1/24", "dev", l.SrvDev)
	run(t, "ip", "-n", l.SrvNS, "link", "set", l.SrvDev, "up")
	// A fresh link drops what it is given until the kernel's link watcher
	// has seen its carrier (it runs at most once a second): wait until every
	// link is UP and every bridge port forwards.
	links := [][2]string{{l.SrvNS, l.SrvDev}, {l.CliNS, l.CliIf}}
	if withRouter {
		links = append(links, [2]string{l.RtrNS, l.RtrIf}, [2]string{l.SrvNS, "rkpa" + suf}, [2]string{l.SrvNS, "rkpe" + suf})
	}
	for _, ln := range links {
		waitLinkUp(t, ln[0], ln[1])
	}
	return l
}

// waitLinkUp waits (at most 5 s) until ip(8) shows dev in ns as state UP
// and, for a bridge port, as forwarding.
func waitLinkUp(t *testing.T, ns, dev string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		out, err := exec.Command("ip", "-n", ns, "-d", "-o", "link", "show", "dev", dev).CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show %s: %v: %s", dev, err, out)
		}
		s := string(out)
		if strings.Contains(s, "state UP") && (!strings.Contains(s, "bridge_slave") || strings.Contains(s, "bridge_slave state forwarding")) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s in %s is not up after 5s", dev, ns)
}
