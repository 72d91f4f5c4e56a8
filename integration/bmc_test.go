package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/store"
)

// TestBMCPowersAndWatchesQEMUNode: the HAT simulator is a QEMU node's BMC.
// It connects to racklet-boot over the rack LAN; the config says power on,
// so it starts QEMU, which boots through racklet-boot (iPXE, HTTP) while
// its console reaches racklet-boot's log; `racklet-boot power off` stops
// QEMU, `power on` boots it again as a new boot; a failing boot is in the
// timeline with the console lines around its kernel panic.
func TestBMCPowersAndWatchesQEMUNode(t *testing.T) {
	need(t, "qemu-system-x86_64", "busybox", "cpio", "gzip", "apt-get", "dpkg-deb", "ss")
	dir := t.TempDir()
	ctx := t.Context()
	boot := bootDir(t, nil)
	if b, err := os.ReadFile(debianKernel(t)); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(boot, "vmlinuz"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	const up = "racklet-test: node up"
	busyboxInitramfsWith(t, filepath.Join(boot, "initrd.gz"), "echo "+up+"\nwhile true; do /bin/busybox sleep 1; done\n")

	// The HAT's identity first: the config enrols its key.
	hatState := filepath.Join(dir, "hat", "hat.json")
	os.MkdirAll(filepath.Dir(hatState), 0o755)
	dev, err := hatsim.Open(hatState, hatsim.Options{Serial: "5b154581"})
	if err != nil {
		t.Fatal(err)
	}
	key := hatlink.EncodeKey(dev.Identity().SignKey)

	sw := newSwitch(t)
	srvNS := newHost(t, "srv")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.81.0.1/24")); err != nil {
		t.Fatal(err)
	}
	// The HAT's LAN port: an address on the switch itself, where QEMU's tap is.
	if err := sw.NS.Run(ctx, "ip", "addr", "add", "10.81.0.250/24", "dev", sw.Bridge); err != nil {
		t.Fatal(err)
	}
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}
	const vmMAC = "52:54:00:81:00:01"
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.81.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.81.0.100, end: 10.81.0.150}
router: 10.81.0.1
leaseTime: 10m`, fmt.Sprintf(`nodes:
  - name: pc-01
    kind: bios
    mac: %s
    hatKey: %s
    power: on
    boot: {dir: %s, kernel: vmlinuz, initrd: [initrd.gz], cmdline: "console=ttyS0 no_timer_check"}
`, vmMAC, key, boot)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67", "tcp:7070")
	// The operator commands use the server's socket in its data directory;
	// the console and the timeline are read as a remote operator would,
	// over HTTP with the token.
	api := operatorAPI{url: "http://10.81.0.1", dataDir: filepath.Join(dir, "data")}
	cli := func(args ...string) string {
		t.Helper()
		out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), append(args, "--data-dir", api.dataDir)...)
		if err != nil {
			t.Fatalf("racklet-boot %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	// QEMU outlives the simulator (it is the node, the simulator its
	// HAT): end it by its pid file when the test ends.
	pidFile := filepath.Join(dir, "hat", "hat.node", "qemu.pid")
	t.Cleanup(func() {
		if pid, ok := livePID(pidFile); ok {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	sim := start(t, sw.NS, filepath.Join(bin, "racklet-hat-sim"), "--state", hatState, "--bmc", "tcp:10.81.0.1:7070", "--log-level", "debug",
		"--", "qemu-system-x86_64", "-display", "none", "-m", "512", "-boot", "n",
		"-nic", "tap,ifname=tap0,script=no,downscript=no,model=e1000,mac="+vmMAC)
	_ = sim

	waitFor(t, 6*time.Minute, "the node's console to show it up", func() bool {
		return strings.Contains(consoleOf(ctx, srvNS, api, "pc-01", 0), up)
	})
	first := powerStatus(t, cli("power", "on", "pc-01", "-o", "json"))
	console := cli("console", "pc-01")
	if !strings.Contains(console, "Linux version") {
		t.Errorf("the console has no kernel lines:\n%s", tail(console, 2000))
	}
	if len(lines(srv.Output(), "/ipxe/52-54-00-81-00-01/boot.ipxe")) == 0 {
		t.Error("the node did not boot through racklet-boot (no iPXE script request)")
	}

	// power off stops QEMU.
	pid, _ := livePID(pidFile)
	off := powerStatus(t, cli("power", "off", "pc-01", "-o", "json"))
	if off.On {
		t.Fatalf("after power off: %+v", off)
	}
	waitFor(t, 30*time.Second, "QEMU to stop", func() bool { return syscall.Kill(pid, 0) != nil })

	// power on boots it again, through racklet-boot, as the next boot.
	on := powerStatus(t, cli("power", "on", "pc-01", "-o", "json"))
	if !on.On || on.Boot != first.Boot+1 {
		t.Fatalf("after power on: %+v, want on in boot %d", on, first.Boot+1)
	}
	waitFor(t, 6*time.Minute, "the second boot up", func() bool {
		return strings.Contains(consoleOf(ctx, srvNS, api, "pc-01", on.Boot), up)
	})

	// A failing boot: the next initramfs fails like racklet-agent would,
	// and the kernel panics.
	busyboxInitramfsWith(t, filepath.Join(boot, "initrd.gz"),
		"echo 'racklet-agent: boot failed at root-fetched: simulated failure'\nexit 1\n")
	cli("power", "cycle", "pc-01")
	var failed store.Event
	waitFor(t, 6*time.Minute, "a boot.failed event", func() bool {
		for _, e := range eventsOf(ctx, srvNS, api, "pc-01") {
			if e.Type == "boot.failed" && strings.Contains(e.Detail, "kernel panic") && e.Console != nil {
				failed = e
				return true
			}
		}
		return false
	})
	lines := strings.Split(cli("console", "pc-01", "--boot", strconv.FormatUint(failed.Console.Boot, 10)), "\n")
	from, to := failed.Console.From-1, min(failed.Console.To, len(lines))
	around := strings.Join(lines[max(0, from):to], "\n")
	if !strings.Contains(around, "Kernel panic") || !strings.Contains(around, "simulated failure") {
		t.Errorf("console lines %d-%d of boot %d do not show the failure:\n%s", failed.Console.From, failed.Console.To, failed.Console.Boot, around)
	}
	timeline := eventsOf(ctx, srvNS, api, "pc-01")
	for _, want := range []string{"power.off", "power.on", "power.cycle", "boot.failed", "bmc.connected"} {
		found := false
		for _, e := range timeline {
			found = found || (e.Type == want && (want == "bmc.connected" || want == "boot.failed" || strings.Contains(e.Detail, "asked by")))
		}
		if !found {
			t.Errorf("no %s event (with who asked) in the timeline", want)
		}
	}
}

type bmcStatus struct {
	On   bool   `json:"on"`
	Boot uint64 `json:"boot"`
}

func powerStatus(t *testing.T, out string) bmcStatus {
	t.Helper()
	var sts []bmcStatus
	if err := json.Unmarshal([]byte(out), &sts); err != nil || len(sts) != 1 {
		t.Fatalf("power output %q: %v", out, err)
	}
	return sts[0]
}

// operatorAPI is where a test reaches racklet-boot as an operator: its URL
// with the token from its data directory, or its socket there.
type operatorAPI struct{ url, dataDir string }

func (a operatorAPI) tokenFile() string { return filepath.Join(a.dataDir, "admin.token") }

func consoleOf(ctx context.Context, ns netlab.Namespace, api operatorAPI, node string, boot uint64) string {
	out, _ := ns.Output(ctx, filepath.Join(bin, "racklet-boot"), "console", node, "--boot", strconv.FormatUint(boot, 10),
		"--server", api.url, "--token-file", api.tokenFile())
	return out
}

func eventsOf(ctx context.Context, ns netlab.Namespace, api operatorAPI, node string) []store.Event {
	tok, err := os.ReadFile(api.tokenFile())
	if err != nil {
		return nil
	}
	out, err := ns.Output(ctx, "curl", "-sf", "-H", "Authorization: Bearer "+strings.TrimSpace(string(tok)), api.url+"/api/v1/admin/nodes/"+node+"/timeline?limit=500")
	if err != nil {
		return nil
	}
	var evs []store.Event
	json.Unmarshal([]byte(out), &evs)
	return evs
}

func livePID(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil && pid > 0 && syscall.Kill(pid, 0) == nil
}

// waitFor polls cond every second until timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Second)
	}
}
