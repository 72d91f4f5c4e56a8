package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/netlab"
)

// TestIPXEBootsKernelOverHTTP: QEMU x86-64 with its own iPXE ROM gets an
// address and the script URL from racklet-boot in full mode, runs the
// generated iPXE script, loads a Debian kernel and a busybox initramfs over
// HTTP, and the initramfs prints its marker on the serial console.
func TestIPXEBootsKernelOverHTTP(t *testing.T) {
	need(t, "qemu-system-x86_64", "busybox", "cpio", "gzip", "apt-get", "dpkg-deb", "ss")
	dir := t.TempDir()
	ctx := t.Context()
	boot := bootDir(t, nil)
	kernel := debianKernel(t)
	if b, err := os.ReadFile(kernel); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(boot, "vmlinuz"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	busyboxInitramfs(t, filepath.Join(boot, "initrd.gz"))

	sw := newSwitch(t)
	srvNS := newHost(t, "srv")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.79.0.1/24")); err != nil {
		t.Fatal(err)
	}
	const vmMAC = "52:54:00:79:00:01"
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.79.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.79.0.100, end: 10.79.0.150}
router: 10.79.0.1
leaseTime: 10m`, fmt.Sprintf(`nodes:
  - name: pc-01
    kind: bios
    mac: %s
    boot: {dir: %s, kernel: vmlinuz, initrd: [initrd.gz], cmdline: "console=ttyS0 no_timer_check panic=-1"}
`, vmMAC, boot)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")

	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	vm := startVM(t, sw, "qemu-system-x86_64", "-display", "none", "-serial", "stdio", "-m", "512",
		"-boot", "n", "-no-reboot", "-nic", "tap,ifname=tap0,script=no,downscript=no,model=e1000,mac="+vmMAC)
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(vm.Output(), initramfsMarker) {
		if vm.Exited() {
			t.Fatalf("qemu exited before the marker:\n%s", tail(vm.Output(), 3000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the serial console within 5 minutes:\n%s", initramfsMarker, tail(vm.Output(), 3000))
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Logf("iPXE boot to the initramfs marker took %s", time.Since(start).Round(time.Second))
	for _, want := range []string{"/ipxe/52-54-00-79-00-01/boot.ipxe", "vmlinuz", "initrd.gz"} {
		if len(lines(srv.Output(), want)) == 0 {
			t.Errorf("server log has no request for %s", want)
		}
	}
}

// startVM runs QEMU inside the switch namespace (where its tap is).
func startVM(t *testing.T, sw *netlab.Switch, name string, args ...string) *proc {
	t.Helper()
	return start(t, sw.NS, name, args...)
}
