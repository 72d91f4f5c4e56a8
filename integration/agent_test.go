package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image/verity"
	"github.com/racklet/racklet-boot/internal/vmtest"
	"github.com/racklet/racklet-boot/serverkey"
)

// rootMarker is what the busybox root's init prints once it runs.
const rootMarker = "RACKLET-ROOT-INIT-RAN"

// agentModules are the modules the test initramfs loads (virtio NIC and
// HAT port, loop, dm-verity, squashfs, overlay), as the image's would.
var agentModules = []string{"virtio_pci", "virtio_net", "virtio_console", "loop", "dm-verity", "squashfs", "overlay"}

// TestAgentBootsVerifiedRoot: QEMU x86-64 runs Debian's kernel with an
// initramfs whose /init is racklet-agent. The agent gets an address and
// racklet-boot's URL over DHCP, asks its name, measures the boot into the
// simulated HAT (racklet-hat-sim on a virtio-serial port) and attests,
// fetches root.squashfs and root.verity, sets up dm-verity, mounts the
// busybox root with an overlay and switches to it; busybox init prints its
// marker and runs `racklet-agent health`. racklet-boot's timeline holds
// every stage. Then the tamper cases: one flipped byte in the served
// root.squashfs, and a changed initramfs, each refused with its reason and
// no user space of the root run.
func TestAgentBootsVerifiedRoot(t *testing.T) {
	need(t, "qemu-system-x86_64", "mksquashfs", "busybox", "ss", "curl", "apt-get", "dpkg-deb", "depmod")
	k := vmtest.DebianKernel(t)
	dir := t.TempDir()
	ctx := t.Context()
	agentBin := vmtest.GoBinary(t, "github.com/racklet/racklet-boot/cmd/racklet-agent", dir)

	// The root: busybox whose init prints the marker, reports healthy and powers off.
	boot := bootDir(t, nil)
	squash, ver, root := busyboxRoot(t, dir, agentBin, boot)

	// The HAT: a simulator whose key the rack config pre-provisions.
	hatState := filepath.Join(dir, "hat.json")
	dev, err := hatsim.Open(hatState, hatsim.Options{Serial: "5b154510"})
	if err != nil {
		t.Fatal(err)
	}
	hatKey := hatlink.EncodeKey(dev.Identity().SignKey)

	const vmMAC = "52:54:00:81:00:01"
	p := bootparams.Params{RootHash: root.RootHashHex(), Salt: hex.EncodeToString(root.Salt), DataBlocks: root.DataBlocks,
		Root: squash, Verity: ver, Kernel: "vmlinuz", OnFailure: bootparams.FailHalt}
	cmdline := "console=ttyS0 no_timer_check loglevel=3 retain_initrd panic=-1 racklet.debug " + p.String()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(k.Vmlinuz); err != nil {
		t.Fatal(err)
	} else {
		writeFile(t, boot, "vmlinuz", string(b))
	}
	initrd := filepath.Join(boot, "initrd.img")
	// racklet-boot's answer-signing key, made before it starts (it keeps
	// the one in its data directory) and carried by the initramfs as an
	// image built with --server-key carries it.
	signer, err := serverkey.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	ir := vmtest.NewInitramfs()
	ir.HostFile(t, "init", agentBin)
	ir.File(bootparams.ServerKeyFile, []byte(signer.PublicText()+"\n"), 0o644)
	ir.Modules(t, k, agentModules...)
	ir.Write(t, initrd)

	sw := newSwitch(t)
	srvNS := newHost(t, "srv")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.81.0.1/24")); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.81.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.81.0.100, end: 10.81.0.150}
router: 10.81.0.1
leaseTime: 10m`, fmt.Sprintf(`nodes:
  - name: pc-01
    kind: bios
    mac: %s
    hatKey: %q
    boot: {dir: %s, kernel: vmlinuz, initrd: [initrd.img], rootHash: %s, cmdline: %q}
`, vmMAC, hatKey, boot, root.RootHashHex(), cmdline)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}

	// boot runs one VM to its power-off with a fresh HAT (registers reset,
	// as a power cycle does) and returns its console.
	boot1 := func(t *testing.T, initrd string) string {
		t.Helper()
		sock := filepath.Join(dir, "hat.sock")
		hat := start(t, sw.NS, filepath.Join(bin, "racklet-hat-sim"), "--state", hatState, "--listen", "unix:"+sock)
		hat.waitOutput(t, "unix:"+sock, 10*time.Second)
		defer hat.Stop()
		m := vmtest.Machine{Kernel: k.Vmlinuz, Initrd: initrd, Append: cmdline, Args: []string{
			"-nic", "tap,ifname=tap0,script=no,downscript=no,model=virtio-net-pci,mac=" + vmMAC,
			"-device", "virtio-serial-pci", "-chardev", "socket,id=hat,path=" + sock,
			"-device", "virtserialport,chardev=hat,name=racklet.hat"}}
		start := time.Now()
		vm := startVM(t, sw, "qemu-system-x86_64", m.QEMUArgs()...)
		select {
		case <-vm.done:
		case <-time.After(4 * time.Minute):
			t.Fatalf("the VM did not power off within 4 minutes:\n%s", tail(vm.Output(), 5000))
		}
		t.Logf("VM ran %s", time.Since(start).Round(time.Second))
		return strings.ReplaceAll(vm.Output(), "\r", "")
	}

	t.Run("verified root boots and reports healthy", func(t *testing.T) {
		out := boot1(t, initrd)
		for _, want := range []string{"attestation accepted", "digests match the command line", "verified by dm-verity and mounted",
			"switching to /sbin/init", rootMarker, "racklet-agent: reported healthy"} {
			if !strings.Contains(out, want) {
				t.Errorf("console has no %q", want)
			}
		}
		if t.Failed() {
			t.Fatalf("console:\n%s", tail(out, 6000))
		}
		t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent:"), "\n"))
		want := []string{"agent.network", "agent.attested", "agent.root-fetched", "agent.root-verified", "agent.switched", "agent.healthy"}
		if got := agentTimeline(t, srv, "pc-01"); !equalTail(got, want) {
			t.Errorf("pc-01's timeline ends %v, want %v", got, want)
		}
	})

	t.Run("flipped byte in root.squashfs is refused", func(t *testing.T) {
		path := filepath.Join(boot, "root.squashfs")
		good, _ := os.ReadFile(path)
		bad := bytes.Clone(good)
		bad[len(bad)/2] ^= 0x01
		writeFile(t, boot, "root.squashfs", string(bad))
		defer writeFile(t, boot, "root.squashfs", string(good))
		out := boot1(t, initrd)
		if !strings.Contains(out, "boot failed at root-fetched: root.squashfs") || !strings.Contains(out, "digest mismatch") || strings.Contains(out, rootMarker) {
			t.Fatalf("want a root-fetched refusal and no root init; console:\n%s", tail(out, 5000))
		}
		t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent:"), "\n"))
		requireFailure(t, srv, "pc-01", "digest mismatch")
	})

	t.Run("changed initramfs is refused by attestation", func(t *testing.T) {
		// The VM loads this initramfs; racklet-boot serves and expects the original.
		other := filepath.Join(dir, "initrd-changed.img")
		ir.File("etc/changed", []byte("an extra file\n"), 0o644)
		ir.Write(t, other)
		out := boot1(t, other)
		if !strings.Contains(out, "boot failed at attested: attestation refused by racklet-boot") || strings.Contains(out, rootMarker) {
			t.Fatalf("want an attestation refusal and no root init; console:\n%s", tail(out, 5000))
		}
		t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent:"), "\n"))
		requireFailure(t, srv, "pc-01", "mismatch: initramfs")
	})
}

// busyboxRoot writes the root squashfs and its verity tree into boot and
// returns their digests and the tree.
func busyboxRoot(t *testing.T, dir, agentBin, boot string) (string, string, *verity.Result) {
	t.Helper()
	rootDir := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "sbin", "etc", "dev", "proc", "sys", "run", "tmp", "usr/lib/racklet"} {
		if err := os.MkdirAll(filepath.Join(rootDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, _ := exec.LookPath("busybox")
	if b, err := os.ReadFile(bb); err != nil {
		t.Fatal(err)
	} else {
		writeFile(t, rootDir, "bin/busybox", string(b))
		os.Chmod(filepath.Join(rootDir, "bin/busybox"), 0o755)
	}
	if b, err := os.ReadFile(agentBin); err != nil {
		t.Fatal(err)
	} else {
		writeFile(t, rootDir, "usr/lib/racklet/racklet-agent", string(b))
		os.Chmod(filepath.Join(rootDir, "usr/lib/racklet/racklet-agent"), 0o755)
	}
	for _, l := range []string{"bin/sh", "sbin/init", "sbin/poweroff"} {
		if err := os.Symlink("/bin/busybox", filepath.Join(rootDir, l)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, rootDir, "etc/inittab", "::sysinit:/bin/busybox echo "+rootMarker+"\n"+
		"::sysinit:/usr/lib/racklet/racklet-agent health --attempts 3\n"+
		"::sysinit:/bin/busybox poweroff -f\n")
	sq := filepath.Join(boot, "root.squashfs")
	if out, err := exec.Command("mksquashfs", rootDir, sq, "-noappend", "-all-root", "-comp", "gzip", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, out)
	}
	data, err := os.ReadFile(sq)
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%4096 != 0 {
		t.Fatalf("root.squashfs is %d bytes, not 4 KiB aligned", len(data))
	}
	var tree bytes.Buffer
	res, err := verity.Build(t.Context(), bytes.NewReader(data), int64(len(data)), &tree, verity.Options{Salt: []byte("racklet-test")})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, boot, "root.verity", tree.String())
	return digestOf(data), digestOf(tree.Bytes()), res
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// agentTimeline returns the node's agent.* events as "type: detail", from
// racklet-boot's API.
func agentTimeline(t *testing.T, s *server, node string) []string {
	t.Helper()
	out, err := s.ns.Output(t.Context(), "curl", "-sf", "--unix-socket", filepath.Join(s.dataDir, "admin.sock"), "http://racklet-boot/api/v1/nodes/"+node+"/events")
	if err != nil {
		t.Fatalf("read the timeline: %v: %s", err, out)
	}
	var body struct {
		Events []struct{ Type, Detail string }
	}
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range body.Events {
		if strings.HasPrefix(e.Type, "agent.") {
			types = append(types, e.Type+": "+e.Detail)
		}
	}
	return types
}

// equalTail reports whether the event types at the end of got are want.
func equalTail(got, want []string) bool {
	if len(got) < len(want) {
		return false
	}
	for i, w := range want {
		typ, _, _ := strings.Cut(got[len(got)-len(want)+i], ":")
		if typ != w {
			return false
		}
	}
	return true
}

// requireFailure checks the node's last agent event is a failure naming reason.
func requireFailure(t *testing.T, s *server, node, reason string) {
	t.Helper()
	got := agentTimeline(t, s, node)
	if len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "agent.failed: ") || !strings.Contains(got[len(got)-1], reason) {
		t.Errorf("pc-01's timeline ends %v, want agent.failed naming %q", got, reason)
	}
}
