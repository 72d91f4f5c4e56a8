package integration

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDHCPProxyBesideDnsmasq: dnsmasq plays the home router and hands out the
// addresses; racklet-boot in proxy mode adds boot options for boot clients
// only. A plain DHCP client gets dnsmasq's address and nothing from us; QEMU's
// own iPXE ROM gets dnsmasq's address plus racklet-boot's script URL, and
// fetches the script from racklet-boot over HTTP.
func TestDHCPProxyBesideDnsmasq(t *testing.T) {
	need(t, "dnsmasq", "udhcpc", "qemu-system-x86_64", "tshark", "ss")
	dir := t.TempDir()
	ctx := t.Context()
	sw := newSwitch(t)
	router, srvNS, cli := newHost(t, "rtr"), newHost(t, "srv"), newHost(t, "cli")
	if err := sw.Attach(ctx, router, "eth0", mustPrefix("10.78.0.1/24")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.78.0.2/24")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, cli, "eth0", mustPrefix("")); err != nil {
		t.Fatal(err)
	}
	dm := start(t, router, "dnsmasq", "--keep-in-foreground", "--log-dhcp", "--log-facility=-",
		"--conf-file=/dev/null", "--port=0", "--bind-interfaces", "--interface=eth0",
		"--dhcp-range=10.78.0.100,10.78.0.150,255.255.255.0,10m", "--dhcp-option=3,10.78.0.1",
		"--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"), "--pid-file="+filepath.Join(dir, "dnsmasq.pid"))
	waitListening(t, router, dm, 10*time.Second, "udp:67")

	const vmMAC = "52:54:00:78:00:01"
	boot := bootDir(t, map[string]string{"vmlinuz": strings.Repeat("k", 4096), "initrd.gz": "i"})
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.78.0.2", filepath.Join(dir, "data"), "mode: proxy",
		fmt.Sprintf(`unknownMachines: ignore
nodes:
  - name: pc-01
    kind: bios
    mac: %s
    boot: {dir: %s, kernel: vmlinuz, initrd: [initrd.gz], cmdline: "console=ttyS0 no_timer_check"}
`, vmMAC, boot)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67", "udp:4011")

	capture := start(t, sw.NS, "tshark", "-l", "-n", "-i", "br0", "-f", "udp port 67 or udp port 68 or udp port 4011",
		"-T", "fields", "-e", "ip.src", "-e", "dhcp.ip.your", "-e", "dhcp.option.dhcp")
	capture.waitOutput(t, "Capturing on", 20*time.Second)

	// A plain client: dnsmasq's address and router; racklet-boot stays silent.
	us, ulog := script(t, dir, "udhcpc", udhcpcScript)
	start(t, cli, "udhcpc", "-i", "eth0", "-f", "-q", "-t", "5", "-T", "2", "-s", us)
	m, _ := waitLog(t, ulog, regexp.MustCompile(`event=bound ip=(10\.78\.0\.\d+) .* router=10\.78\.0\.1 .*serverid=(\S+)`), 0, 30*time.Second)
	if m[2] != "10.78.0.1" {
		t.Errorf("plain client bound with server id %s, want the router 10.78.0.1", m[2])
	}

	// QEMU's own iPXE ROM: address from dnsmasq, script URL from racklet-boot.
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}
	vm := start(t, sw.NS, "qemu-system-x86_64", "-display", "none", "-serial", "none", "-m", "256",
		"-boot", "n", "-no-reboot", "-nic", "tap,ifname=tap0,script=no,downscript=no,model=e1000,mac="+vmMAC)
	script := "/ipxe/52-54-00-78-00-01/boot.ipxe"
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(srv.Output(), script) {
		if vm.Exited() {
			t.Fatalf("qemu exited: %s", vm.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("iPXE never fetched %s from racklet-boot within 3 minutes", script)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// The request came from the address dnsmasq leased to the VM.
	leases := readFileT(t, filepath.Join(dir, "dnsmasq.leases"))
	var vmAddr string
	for _, l := range strings.Split(leases, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[1] == vmMAC {
			vmAddr = f[2]
		}
	}
	if vmAddr == "" {
		t.Fatalf("dnsmasq leased nothing to the VM; leases:\n%s", leases)
	}
	if got := lines(srv.Output(), script, vmAddr); len(got) == 0 {
		t.Errorf("no HTTP request for %s from the dnsmasq-leased %s in the server log", script, vmAddr)
	}
	// On the wire, racklet-boot never handed out an address: every DHCP
	// packet it sent has yiaddr 0.0.0.0, and it answered the VM on 67 or 4011.
	capture.Stop()
	var ours int
	for _, l := range strings.Split(capture.Output(), "\n") {
		f := strings.Split(l, "\t")
		if len(f) < 3 || f[0] != "10.78.0.2" {
			continue
		}
		ours++
		if f[1] != "0.0.0.0" {
			t.Errorf("proxy mode offered an address on the wire: %q", l)
		}
	}
	if ours == 0 {
		t.Errorf("tshark saw no DHCP packet from racklet-boot:\n%s", capture.Output())
	}
}
