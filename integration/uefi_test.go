package integration

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// aarch64Firmware is EDK2 for QEMU's arm64 virt machine (qemu-efi-aarch64).
const aarch64Firmware = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"

// TestUEFIArm64PXE: QEMU aarch64 virt with its own UEFI firmware (EDK2) sends
// a PXE DISCOVER with arch 11, gets racklet-boot's answer, and downloads the
// node's EFI binary over TFTP — with EDK2's size probe ("User aborted the
// transfer") and its windowsize 4 read. The boot log shows the download.
func TestUEFIArm64PXE(t *testing.T) {
	need(t, "qemu-system-aarch64", aarch64Firmware, "tshark", "ss")
	dir := t.TempDir()
	ctx := t.Context()
	efi := make([]byte, 1<<20)
	if _, err := rand.Read(efi); err != nil {
		t.Fatal(err)
	}
	boot := bootDir(t, nil)
	if err := os.WriteFile(filepath.Join(boot, "bootaa64.efi"), efi, 0o644); err != nil {
		t.Fatal(err)
	}
	sw := newSwitch(t)
	srvNS := newHost(t, "srv")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.80.0.1/24")); err != nil {
		t.Fatal(err)
	}
	const vmMAC = "52:54:00:80:00:01"
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.80.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.80.0.100, end: 10.80.0.150}
router: 10.80.0.1
leaseTime: 10m`, fmt.Sprintf(`nodes:
  - name: arm-01
    kind: uefi-arm64
    mac: %s
    boot: {dir: %s, efi: bootaa64.efi}
`, vmMAC, boot)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}
	capture := start(t, sw.NS, "tshark", "-l", "-n", "-i", "br0", "-f", "udp or arp")
	capture.waitOutput(t, "Capturing on", 20*time.Second)
	vm := startVM(t, sw, "qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57", "-m", "512",
		"-display", "none", "-serial", "stdio", "-bios", aarch64Firmware, "-no-reboot",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,mac="+vmMAC)
	deadline := time.Now().Add(6 * time.Minute)
	want := `"file":"bootaa64.efi"`
	for {
		done := lines(srv.Output(), "tftp transfer", "bootaa64.efi", `"outcome":"ok"`)
		if len(done) > 0 {
			t.Logf("EDK2 fetched the EFI binary: %s", done[0])
			if !strings.Contains(done[0], `"windowsize":4`) {
				t.Logf("note: EDK2's read did not use windowsize 4: %s", done[0])
			}
			break
		}
		if vm.Exited() {
			t.Fatalf("qemu exited before the TFTP download:\n%s", tail(vm.Output(), 3000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no complete TFTP transfer of bootaa64.efi within 6 minutes (want a log line with %s); serial console:\n%s", want, tail(vm.Output(), 3000))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if got := lines(srv.Output(), "dhcp", `"arch":11`); len(got) == 0 {
		t.Errorf("no DHCP request classified as arch 11 (arm64 UEFI) in the server log")
	}
}
