package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/internal/vmtest"
	"github.com/racklet/racklet-boot/serverkey"
)

// cachedServerKey copies racklet-boot's answer-signing key, kept in the
// test cache so cached images (their initramfs carries server.pub) stay
// valid from run to run, into the data directory data (made 0700), and
// returns the cached server.pub for racklet-image build --server-key.
func cachedServerKey(t *testing.T, data string) string {
	t.Helper()
	keyDir := filepath.Join(vmtest.CacheDir(), "e2e", "server-key")
	if _, err := serverkey.Open(keyDir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{serverkey.PrivateFile, serverkey.PublicFile} {
		if err := os.WriteFile(filepath.Join(data, f), []byte(readFileT(t, filepath.Join(keyDir, f))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(keyDir, serverkey.PublicFile)
}

// plainImageDir lays out a built image as a plain boot source directory:
// its boot partition's files, root.squashfs and root.verity.
func plainImageDir(t *testing.T, img string, m *image.Manifest) string {
	t.Helper()
	plain := bootDir(t, nil)
	for _, f := range m.Boot.Files {
		if b, err := exec.Command("mcopy", "-n", "-i", filepath.Join(img, image.BootFile), "::"+f, filepath.Join(plain, f)).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v: %s", f, err, b)
		}
	}
	for _, f := range []string{image.RootFile, image.VerityFile} {
		if err := os.Link(filepath.Join(img, f), filepath.Join(plain, f)); err != nil {
			t.Fatal(err)
		}
	}
	return plain
}

// changedInitramfs writes the initramfs of a plain image directory with one
// more (valid) archive after it, as a tampered boot would load it, and
// returns its path.
func changedInitramfs(t *testing.T, dir, plain string) string {
	t.Helper()
	changed := filepath.Join(dir, "initramfs-changed")
	extra := vmtest.NewInitramfs()
	extra.File("etc/changed", []byte("an extra file\n"), 0o644)
	extra.Write(t, changed+".extra")
	orig := readFileT(t, filepath.Join(plain, image.GenericInitramfs))
	if err := os.WriteFile(changed, append([]byte(orig), readFileT(t, changed+".extra")...), 0o644); err != nil {
		t.Fatal(err)
	}
	return changed
}

// qemuNode is a QEMU machine on a test switch with racklet-hat-sim on a
// virtio-serial port named racklet.hat (the agent's default HAT link).
type qemuNode struct {
	sw       *netlab.Switch
	dir      string   // holds the HAT's socket
	hatState string   // racklet-hat-sim's state file (its identity)
	qemu     string   // qemu-system-ARCH
	args     []string // the machine: memory, NIC, firmware, a virtio-serial bus, an RNG
}

// pcNode is an x86-64 machine on the switch's tap0 with the MAC and memory
// (QEMU -m) given.
func pcNode(sw *netlab.Switch, dir, hatState, mac, memory string) qemuNode {
	return qemuNode{sw: sw, dir: dir, hatState: hatState, qemu: "qemu-system-x86_64", args: []string{"-m", memory,
		"-nic", "tap,ifname=tap0,script=no,downscript=no,model=virtio-net-pci,mac=" + mac,
		"-device", "virtio-serial-pci", "-device", "virtio-rng-pci"}}
}

// boot runs the machine with a fresh HAT (registers reset, as a power
// cycle does) and more QEMU arguments until done says so or it powers off,
// and returns its console and how long it ran; past limit the test fails
// with the console's tail.
func (n qemuNode) boot(t *testing.T, qemuArgs []string, limit time.Duration, done func(console string) bool) (string, time.Duration) {
	t.Helper()
	sock := filepath.Join(n.dir, "hat.sock")
	hat := start(t, n.sw.NS, filepath.Join(bin, "racklet-hat-sim"), "--state", n.hatState, "--listen", "unix:"+sock)
	hat.waitOutput(t, "unix:"+sock, 10*time.Second)
	defer hat.Stop()
	args := append([]string{"-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"}, n.args...)
	args = append(append(args, "-chardev", "socket,id=hat,path="+sock, "-device", "virtserialport,chardev=hat,name=racklet.hat"), qemuArgs...)
	begin := time.Now()
	vm := startVM(t, n.sw, n.qemu, args...)
	defer vm.Kill()
	for deadline := begin.Add(limit); !done(plainConsole(vm.Output())) && !vm.Exited(); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("the machine did not finish within %s; console:\n%s", limit, tail(plainConsole(vm.Output()), 8000))
		}
	}
	return plainConsole(vm.Output()), time.Since(begin)
}
