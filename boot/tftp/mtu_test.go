package tftp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestMTUCap checks that blksize is capped at the receiving interface's
// MTU minus 32. It runs itself again inside a network namespace whose
// loopback has an Ethernet MTU of 1500, so a request for 65464 must get
// 1468, the Raspberry Pi's own choice.
func TestMTUCap(t *testing.T) {
	if os.Getenv("RKT_TFTP_IN_NETNS") == "1" {
		srv := startServer(t, &Server{Files: &fakeFiles{files: map[string][]byte{"f": pattern(10000)}}})
		c := newRawClient(t, srv)
		// Control messages are switched on when Serve starts; a request
		// queued before that carries no interface. Wait for an answer
		// to a miss first.
		c.request(rrq(opRRQ, "missing", "octet"))
		if p := c.recv(5 * time.Second); p.Op != opERROR {
			t.Fatalf("got %+v, want ERROR for the miss", p)
		}
		c.request(rrq(opRRQ, "f", "octet", "blksize", "65464"))
		p := c.recv(5 * time.Second)
		if p.Op != opOACK || p.Opts["blksize"] != "1468" {
			t.Fatalf("got %+v, want OACK with blksize 1468", p)
		}
		c.ack(0)
		if p := c.recv(5 * time.Second); p.Op != opDATA || len(p.Data) != 1468 {
			t.Fatalf("got %+v, want DATA of 1468 bytes", p)
		}
		return
	}
	ip := testutil.NeedTool(t, "ip")
	testutil.NeedRoot(t, "the MTU test makes a network namespace")
	ns := fmt.Sprintf("rkttftpmtu%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	run("netns", "exec", ns, "ip", "link", "set", "lo", "mtu", "1500")
	run("netns", "exec", ns, "ip", "link", "set", "lo", "up")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, os.Args[0], "-test.run", "^TestMTUCap$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), "RKT_TFTP_IN_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("test inside the namespace failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestMTUCap") {
		t.Fatalf("the test did not run inside the namespace:\n%s", out)
	}
}
