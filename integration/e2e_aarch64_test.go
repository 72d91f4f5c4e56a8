package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image"
)

// smallInitMarker is what the small Debian base's rcS prints once it ran its start scripts.
const smallInitMarker = "racklet-small: init done"

// TestNodeBootsDebianImageArm64 is the node boot path on a generic UEFI
// arm64 machine: QEMU's virt board (TCG) with EDK2 (qemu-efi-aarch64) PXE
// boots from racklet-boot serve, whose DHCP classifies it as arch 11 and
// hands it bootaa64.efi over TFTP: the unified kernel image racklet-image
// wrote for the image's generic boot partition (systemd's EFI stub with the
// kernel, racklet's initramfs and the command line). Then the same stages
// as on x86-64: racklet-agent as /init attests with racklet-hat-sim on a
// virtio-serial port (what it measures — the kernel as served, the
// initramfs as systemd-stub handed it over, the command line — must be what
// racklet-boot expects), fetches the root, sets up dm-verity, switches root,
// and the small Debian arm64 base's busybox init runs racklet-image's
// health script: healthy in the timeline. The small base keeps this one
// emulated boot within a few minutes; bench/boot/arm64.sh boots the full
// Debian arm64 base (systemd) the same way.
func TestNodeBootsDebianImageArm64(t *testing.T) {
	bootArm64(t, []string{"--small"}, "2048", smallInitMarker, 15*time.Minute)
}

// bootArm64 boots the Debian arm64 base built with baseArgs through its
// image's unified kernel image, as TestNodeBootsDebianImageArm64 says, with
// mem MiB of RAM until the console shows marker and the node is healthy,
// within limit; it returns the boot's time (QEMU start to healthy).
func bootArm64(t *testing.T, baseArgs []string, mem, marker string, limit time.Duration) time.Duration {
	need(t, "qemu-system-aarch64", aarch64Firmware, "docker-registry", "mcopy", "ss", "curl", "mmdebstrap", "dpkg-deb", "depmod", "flock")
	begin := time.Now()
	ctx := t.Context()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	serverPub := cachedServerKey(t, data)
	img, took := debianImage(t, "arm64", baseArgs, "--boot-dir", "/boot", "--server-key", serverPub)
	t.Logf("image ready in %s: %s", took.Round(100*time.Millisecond), img)
	m, err := image.ReadManifest(img)
	if err != nil {
		t.Fatal(err)
	}
	if m.Boot.UKI == nil {
		t.Fatalf("the arm64 image has no unified kernel image (boot files %v): the base lacks systemd's EFI stub?", m.Boot.Files)
	}
	t.Logf("boot files: kernel %d bytes, initramfs %d bytes, %s %d bytes", m.Boot.Kernel.Size, m.Boot.Initramfs.Size, m.Boot.UKI.File, m.Boot.UKI.Size)

	sw := newSwitch(t)
	srvNS := newHost(t, "a64")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.84.0.1/24")); err != nil {
		t.Fatal(err)
	}
	ref := pushSigned(t, srvNS, dir, img, "127.0.0.1:5000/racklet/debian:arm64"+strings.Join(baseArgs, ""))
	hatState := filepath.Join(dir, "hat.json")
	dev, err := hatsim.Open(hatState, hatsim.Options{Serial: "5b154512"})
	if err != nil {
		t.Fatal(err)
	}
	const vmMAC = "52:54:00:84:00:01"
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.84.0.1", data, `mode: full
pool: {start: 10.84.0.100, end: 10.84.0.150}
router: 10.84.0.1
leaseTime: 10m`, fmt.Sprintf(`trust:
  - repositories: ["127.0.0.1:5000/racklet/*"]
    keys: [{file: %s}]
images:
  insecure: ["127.0.0.1:5000"]
nodes:
  - name: arm-01
    kind: uefi-arm64
    mac: %s
    hatKey: %q
    boot: {image: %q}
`, filepath.Join(dir, "racklet.pub"), vmMAC, hatlink.EncodeKey(dev.Identity().SignKey), ref)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}

	n := qemuNode{sw: sw, dir: dir, hatState: hatState, qemu: "qemu-system-aarch64", args: []string{
		"-M", "virt", "-cpu", "cortex-a72", "-m", mem, "-bios", aarch64Firmware,
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=,mac=" + vmMAC, "-device", "virtio-serial-pci", "-device", "virtio-rng-pci"}}
	healthy := func(string) bool {
		return equalTail(agentTimelineAt(t, srv, "10.84.0.1", "arm-01"), []string{"agent.healthy"})
	}
	bootBegin := time.Now()
	out, _ := n.boot(t, nil, limit, func(c string) bool { return strings.Contains(c, marker) && healthy(c) })
	booted := time.Since(bootBegin)
	for _, want := range []string{"attestation accepted", "digests match the command line", "verified by dm-verity and mounted",
		"switching to /sbin/init", marker} {
		if !strings.Contains(out, want) {
			t.Errorf("console has no %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("console:\n%s", tail(out, 8000))
	}
	t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent:"), "\n"))
	tl := agentTimelineAt(t, srv, "10.84.0.1", "arm-01")
	want := []string{"agent.network", "agent.attested", "agent.root-fetched", "agent.root-verified", "agent.switched", "agent.healthy"}
	if !equalTail(tl, want) {
		t.Errorf("arm-01's timeline ends %v, want %v", tl, want)
	}
	// EDK2 asked as an arm64 UEFI client and loaded the unified kernel image
	// over TFTP; the agent fetched the kernel it measures over HTTP.
	if len(lines(srv.Output(), "dhcp", `"arch":11`)) == 0 {
		t.Errorf("no DHCP request classified as arch 11 (arm64 UEFI) in the server log")
	}
	if len(lines(srv.Output(), "tftp transfer", `"file":"`+m.Boot.UKI.File+`"`, `"outcome":"ok"`)) == 0 {
		t.Errorf("the server log has no complete TFTP transfer of %s", m.Boot.UKI.File)
	}
	t.Logf("wall time: %s (image %s, boot to healthy %s)", time.Since(begin).Round(time.Second), took.Round(100*time.Millisecond), booted.Round(time.Second))
	return booted
}
