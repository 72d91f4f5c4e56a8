package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/netlab"
)

// udhcpcScript records every udhcpc event and configures the address so that
// renewals (unicast from the leased address) can leave.
const udhcpcScript = `#!/bin/sh
echo "event=$1 ip=$ip mask=$mask router=$router dns=$dns lease=$lease serverid=$serverid boot_file=$boot_file siaddr=$siaddr" >> %s
case "$1" in
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/$mask" dev "$interface" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
`

// dhclientScript records dhclient's reason and address; it configures nothing.
const dhclientScript = `#!/bin/sh
echo "reason=$reason ip=$new_ip_address router=$new_routers lease=$new_dhcp_lease_time server=$new_dhcp_server_identifier" >> %s
exit 0
`

func script(t *testing.T, dir, name, body string) (path, log string) {
	t.Helper()
	log = filepath.Join(dir, name+".log")
	path = writeFile(t, dir, name+".sh", fmt.Sprintf(body, log))
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

// waitLog waits until file has a line matching re and returns its submatches.
func waitLog(t *testing.T, file string, re *regexp.Regexp, from int, timeout time.Duration) ([]string, int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(file)
		ls := strings.Split(string(b), "\n")
		for i := from; i < len(ls); i++ {
			if m := re.FindStringSubmatch(ls[i]); m != nil {
				return m, i + 1
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line matching %q in %s within %s:\n%s", re, file, timeout, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDHCPFullModeRealClients: udhcpc and dhclient get leases from full mode,
// renew them, and keep them across a graceful restart and a kill -9.
func TestDHCPFullModeRealClients(t *testing.T) {
	need(t, "udhcpc", "dhclient", "ss")
	dir := t.TempDir()
	sw := newSwitch(t)
	srvNS, cli1, cli2 := newHost(t, "srv"), newHost(t, "c1"), newHost(t, "c2")
	ctx := t.Context()
	for _, h := range []struct {
		ns   netlab.Namespace
		addr string
	}{{srvNS, "10.77.0.1/24"}, {cli1, ""}, {cli2, ""}} {
		if err := sw.Attach(ctx, h.ns, "eth0", mustPrefix(h.addr)); err != nil {
			t.Fatal(err)
		}
	}
	boot := bootDir(t, map[string]string{"kernel": "k"})
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.77.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.77.0.100, end: 10.77.0.150}
router: 10.77.0.1
dns: [10.77.0.1]
leaseTime: 2m`, "unknownMachines: default\ndefault: {dir: "+boot+"}\n"))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")

	// udhcpc: DISCOVER/OFFER/REQUEST/ACK, then a renewal (SIGUSR1).
	us, ulog := script(t, dir, "udhcpc", udhcpcScript)
	u := start(t, cli1, "udhcpc", "-i", "eth0", "-f", "-t", "5", "-T", "2", "-A", "2", "-s", us)
	bound := regexp.MustCompile(`event=bound ip=(10\.77\.0\.\d+) mask=24 router=10\.77\.0\.1 dns=10\.77\.0\.1 lease=(\d+) serverid=10\.77\.0\.1`)
	m, next := waitLog(t, ulog, bound, 0, 30*time.Second)
	leased := m[1]
	if m[2] != "120" {
		t.Errorf("udhcpc lease time = %s s, want 120", m[2])
	}
	renew := regexp.MustCompile(`event=renew ip=(10\.77\.0\.\d+)`)
	_ = u.cmd.Process.Signal(syscall.SIGUSR1)
	m, next = waitLog(t, ulog, renew, next, 20*time.Second)
	if m[1] != leased {
		t.Fatalf("renewal gave %s, want the bound %s", m[1], leased)
	}

	// dhclient: a second client gets a different address.
	ds, dlog := script(t, dir, "dhclient", dhclientScript)
	lf := filepath.Join(dir, "dhclient.leases")
	dhclient := func() *proc {
		return start(t, cli2, "dhclient", "-4", "-d", "-v", "-1", "-sf", ds, "-lf", lf, "-pf", filepath.Join(dir, "dhclient.pid"), "eth0")
	}
	d := dhclient()
	dbound := regexp.MustCompile(`reason=(BOUND|REBOOT|RENEW) ip=(10\.77\.0\.\d+) router=10\.77\.0\.1 lease=120 server=10\.77\.0\.1`)
	dm, dnext := waitLog(t, dlog, dbound, 0, 40*time.Second)
	dAddr := dm[2]
	if dAddr == leased {
		t.Fatalf("dhclient and udhcpc both got %s", leased)
	}
	d.Kill()

	for round, restart := range []func(){func() { srv.Stop() }, func() { srv.Kill() }} {
		restart()
		srv.restart(t)
		waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
		// udhcpc renews after the restart and keeps its address.
		_ = u.cmd.Process.Signal(syscall.SIGUSR1)
		m, next = waitLog(t, ulog, renew, next, 20*time.Second)
		if m[1] != leased {
			t.Fatalf("round %d: after restart udhcpc renewed to %s, want %s", round, m[1], leased)
		}
		// dhclient asks for its old address again (INIT-REBOOT) and gets it.
		d = dhclient()
		dm, dnext = waitLog(t, dlog, dbound, dnext, 40*time.Second)
		if dm[2] != dAddr {
			t.Fatalf("round %d: after restart dhclient got %s, want %s", round, dm[2], dAddr)
		}
		d.Kill()
	}
	// The server's state holds both leases and the boot events behind them.
	out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), "nodes", "--data-dir", filepath.Join(dir, "data"), "-o", "json", "--events", "50")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{leased, dAddr} {
		if !strings.Contains(out, `"addr": "`+addr+`"`) {
			t.Errorf("racklet-boot nodes does not show the lease of %s:\n%s", addr, out)
		}
	}
	for _, ev := range []string{"dhcp.discover", "dhcp.offer", "dhcp.request", "dhcp.ack"} {
		if !strings.Contains(out, ev) {
			t.Errorf("no %s event in the node log:\n%s", ev, out)
		}
	}
}
