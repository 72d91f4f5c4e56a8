//go:build bootbench

package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/vmtest"
)

// The boot-path figures of issue 11 (bench/boot/run.sh and arm64.sh run
// these; they are not part of go test ./...: each boots QEMU several times).

// TestBootFigureVerifiedVsPlain boots the small Debian amd64 image's kernel
// (x86-64 QEMU, TCG, -kernel) to the small base's init marker, alternating:
// racklet's initramfs (DHCP, attestation with racklet-hat-sim, root fetched
// and checked against its digests, dm-verity, overlay, switch_root) and a
// plain busybox initramfs on the same kernel and command line (udhcpc, wget
// of the same root.squashfs from the same server, loop mount, overlay,
// switch_root: nothing measured, nothing verified), and that plain one with
// a sha256sum of the fetched root. It prints the medians and what
// verification costs (issue 11's target: at most 2 s more).
func TestBootFigureVerifiedVsPlain(t *testing.T) {
	need(t, "qemu-system-x86_64", "mcopy", "unsquashfs", "ss", "curl", "mmdebstrap", "dpkg-deb", "depmod", "flock", "busybox")
	rounds := 3
	if s := os.Getenv("ROUNDS"); s != "" {
		fmt.Sscan(s, &rounds)
	}
	ctx := t.Context()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	img, took := debianImage(t, "amd64", []string{"--small"}, "--server-key", cachedServerKey(t, data))
	t.Logf("image ready in %s: %s", took.Round(100*time.Millisecond), img)
	m, err := image.ReadManifest(img)
	if err != nil {
		t.Fatal(err)
	}
	src := plainImageDir(t, img, m)

	sw := newSwitch(t)
	srvNS := newHost(t, "bb")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.85.0.1/24")); err != nil {
		t.Fatal(err)
	}
	hatState := filepath.Join(dir, "hat.json")
	dev, err := hatsim.Open(hatState, hatsim.Options{Serial: "5b154513"})
	if err != nil {
		t.Fatal(err)
	}
	const vmMAC = "52:54:00:85:00:01"
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.85.0.1", data, `mode: full
pool: {start: 10.85.0.100, end: 10.85.0.150}
router: 10.85.0.1
leaseTime: 10m`, fmt.Sprintf(`nodes:
  - name: pc-01
    kind: bios
    mac: %s
    hatKey: %q
    boot: {dir: %s, rootHash: %s}
`, vmMAC, hatlink.EncodeKey(dev.Identity().SignKey), src, m.Verity.RootHash)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}
	url := "http://10.85.0.1/boot/" + strings.ReplaceAll(vmMAC, ":", "-") + "/" + image.RootFile
	plain := plainInitramfs(t, dir, img, m, url, false)
	hashed := plainInitramfs(t, dir, img, m, url, true)

	n := qemuNode{sw: sw, dir: dir, hatState: hatState, qemu: "qemu-system-x86_64", args: []string{"-m", "1536",
		"-nic", "tap,ifname=tap0,script=no,downscript=no,model=virtio-net-pci,mac=" + vmMAC, "-device", "virtio-serial-pci", "-device", "virtio-rng-pci"}}
	kernel := filepath.Join(src, image.GenericKernel)
	run := func(initrd string) time.Duration {
		begin := time.Now()
		var at time.Duration
		out, _ := n.boot(t, []string{"-kernel", kernel, "-initrd", initrd, "-append", m.Cmdline}, 6*time.Minute, func(c string) bool {
			if at == 0 && strings.Contains(c, smallInitMarker) {
				at = time.Since(begin)
			}
			return at != 0
		})
		if at == 0 {
			t.Fatalf("no %q on the console:\n%s", smallInitMarker, tail(out, 5000))
		}
		// Where the time went: the kernel's timestamps and the init's lines.
		var steps []string
		for _, l := range strings.Split(out, "\n") {
			for _, k := range []string{"Run /init", "crng init done", "rng", "racklet-agent:", "plain-initramfs:", "root.squashfs", "loop0:", smallInitMarker} {
				if strings.Contains(l, k) {
					steps = append(steps, "  "+strings.TrimSpace(l))
					break
				}
			}
		}
		// And what racklet-boot saw, from the machine's start.
		for _, e := range eventsOf(ctx, srvNS, operatorAPI{url: "http://10.85.0.1", dataDir: data}, "pc-01") {
			if e.Time.After(begin) {
				steps = append(steps, fmt.Sprintf("  server +%.2fs %s %s", e.Time.Sub(begin).Seconds(), e.Type, tail(e.Detail, 60)))
			}
		}
		t.Logf("%s: %s to the marker\n%s", filepath.Base(initrd), at.Round(100*time.Millisecond), strings.Join(steps, "\n"))
		return at
	}
	// Alternate the order of the three: the machine is shared.
	initrds := []string{filepath.Join(src, image.GenericInitramfs), plain, hashed}
	times := make([][]time.Duration, len(initrds))
	for i := range rounds {
		for j := range initrds {
			k := (i + j) % len(initrds)
			times[k] = append(times[k], run(initrds[k]))
		}
		t.Logf("round %d: verified %s, plain %s, plain+sha256sum %s", i+1, times[0][i].Round(100*time.Millisecond),
			times[1][i].Round(100*time.Millisecond), times[2][i].Round(100*time.Millisecond))
	}
	v, p, h := median(times[0]), median(times[1]), median(times[2])
	fmt.Printf("FIGURE boot to init marker (x86-64 QEMU TCG, %d rounds, medians): verified %.1f s, plain %.1f s: +%.1f s (%.2fx; target <= +2 s); "+
		"plain with a sha256sum of the root %.1f s: the agent's cost beyond hashing the root +%.1f s\n",
		rounds, v.Seconds(), p.Seconds(), (v - p).Seconds(), v.Seconds()/p.Seconds(), h.Seconds(), (v - h).Seconds())
}

// TestBootFigureSizes prints the initramfs's size against the kernel's for
// each architecture's small Debian image (the initramfs does not depend on
// the base's profile: the same agent and modules).
func TestBootFigureSizes(t *testing.T) {
	need(t, "mmdebstrap", "dpkg-deb", "depmod", "flock")
	for _, arch := range []string{"arm64", "amd64"} {
		var args []string
		if arch == "arm64" {
			args = []string{"--boot-dir", "/boot"} // as TestNodeBootsDebianImageArm64 builds it
		}
		img, _ := debianImage(t, arch, []string{"--small"}, append(args, "--server-key", cachedServerKey(t, filepath.Join(t.TempDir(), "data")))...)
		m, err := image.ReadManifest(img)
		if err != nil {
			t.Fatal(err)
		}
		agent, err := os.Stat(filepath.Join(bin, "racklet-agent-linux-"+arch))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("FIGURE initramfs %s: %d bytes (%s; agent %d bytes, %d modules) vs kernel %d bytes: %.2f of the kernel (target <= 0.25)\n",
			arch, m.Boot.Initramfs.Size, m.Boot.Initramfs.Compression, agent.Size(), len(m.Boot.Initramfs.Modules), m.Boot.Kernel.Size,
			float64(m.Boot.Initramfs.Size)/float64(m.Boot.Kernel.Size))
	}
}

// plainInitramfs writes an unverified busybox initramfs for the image's
// kernel (its modules from the image's root): DHCP with udhcpc, the root
// fetched with wget from url into RAM, mounted from a loop device with an
// overlay on tmpfs, switch_root to /sbin/init. With hash, it also runs
// sha256sum over the fetched root (what a full-file check costs here).
func plainInitramfs(t *testing.T, dir, img string, m *image.Manifest, url string, hash bool) string {
	check := ""
	if hash {
		check = "sha256sum /root.squashfs\n"
	}
	t.Helper()
	root := filepath.Join(dir, "modules-root")
	if b, err := exec.Command("unsquashfs", "-q", "-n", "-f", "-d", root, filepath.Join(img, image.RootFile), "lib/modules", "usr/lib/modules").CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs the modules: %v\n%s", err, b)
	}
	if _, err := os.Lstat(filepath.Join(root, "lib")); err != nil {
		if err := os.Symlink("usr/lib", filepath.Join(root, "lib")); err != nil {
			t.Fatal(err)
		}
	}
	k := vmtest.Kernel{Kernel: imagetest.Kernel{Root: root, Version: m.KernelVersion}}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	i := vmtest.NewInitramfs()
	i.HostFile(t, "bin/busybox", bb)
	i.Modules(t, k, "virtio_net", "virtio_pci", "squashfs", "loop", "overlay")
	i.File("bin/dhcp.sh", []byte(`#!/bin/busybox sh
[ "$1" = bound ] && /bin/busybox ip addr add "$ip/$mask" dev "$interface"
exit 0
`), 0o755)
	i.File("init", []byte(`#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /`+vmtest.ModulesList+`); do insmod "$m" 2>/dev/null; done
ip link set eth0 up
udhcpc -i eth0 -q -f -n -t 30 -T 1 -s /bin/dhcp.sh >/dev/null || echo "plain-initramfs: no DHCP lease"
wget -q -O /root.squashfs `+url+` || echo "plain-initramfs: fetch failed"
`+check+`mkdir -p /lower /rw /new
mount -t squashfs -o loop,ro /root.squashfs /lower
mount -t tmpfs tmpfs /rw; mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /new
mount --move /dev /new/dev; mount --move /proc /new/proc; mount --move /sys /new/sys
exec switch_root /new /sbin/init
`), 0o755)
	out := filepath.Join(dir, "plain-initramfs")
	if hash {
		out += "-sha256sum"
	}
	i.Write(t, out)
	return out
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestBootFigureFullArm64 boots the full Debian arm64 base (systemd) the
// way TestNodeBootsDebianImageArm64 boots the small one: EDK2 PXE, the
// unified kernel image, attested, verified root, systemd up to its serial
// getty's prompt, healthy (racklet-health.service runs after
// multi-user.target; systemd stops printing its status on ttyAMA0 once the
// getty has it, so the target's own line may not show). CI boots the small
// base; this is the full one's time.
func TestBootFigureFullArm64(t *testing.T) {
	took := bootArm64(t, nil, "3072", "login:", 30*time.Minute)
	fmt.Printf("FIGURE full Debian arm64 (systemd) through EDK2 PXE and the UKI to healthy: %.0f s (QEMU virt, TCG)\n", took.Seconds())
}
