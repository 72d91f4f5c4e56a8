package initramfs

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestResolveDebianKernel resolves the default modules in a real Debian kernel package.
func TestResolveDebianKernel(t *testing.T) {
	k := imagetest.DebianKernel(t)
	root := os.DirFS(k.Root)
	dir, err := ModulesDir(root, k.Version)
	if err != nil {
		t.Fatal(err)
	}
	ix, err := LoadIndex(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ix.Resolve(Required, Drivers("amd64"))
	if err != nil {
		t.Fatal(err)
	}
	checkOrder(t, ix, res.Load)
	names := map[string]int{}
	for i, p := range res.Load {
		names[ModuleName(p)] = i
		if _, err := os.Stat(filepath.Join(k.Root, dir, p)); err != nil {
			t.Errorf("resolved %s: %v", p, err)
		}
	}
	for _, want := range []string{"dm_mod", "dm_bufio", "reed_solomon", "dm_verity", "dm_crypt", "squashfs", "overlay", "loop",
		"ext4", "jbd2", "crc32c_generic", "virtio_net", "virtio_pci", "virtio_console"} {
		if _, ok := names[want]; !ok {
			t.Errorf("%s is not loaded (load list %v, built in %v)", want, res.Load, res.Builtin)
		}
	}
	if names["crc32c_generic"] > names["ext4"] {
		t.Error("ext4's softdep crc32c loads after ext4")
	}
	if len(res.Missing) > 0 {
		t.Errorf("missing %v", res.Missing)
	}
	t.Logf("%s: %d module files, built in %v, missing %v", k.Version, len(res.Load), res.Builtin, res.Missing)
}

// TestBootDebianKernel boots a real Debian kernel under QEMU (TCG) with an initramfs whose
// /init is a small static test program: the kernel must unpack the zstd archive, run /init,
// and every listed module must load in the listed order.
func TestBootDebianKernel(t *testing.T) {
	qemu := testutil.NeedTool(t, "qemu-system-x86_64")
	k := imagetest.DebianKernel(t)
	work := t.TempDir()
	init := filepath.Join(work, "testinit")
	build := exec.Command("go", "build", "-o", init, "./testdata/testinit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test init: %v\n%s", err, out)
	}
	img := filepath.Join(work, "initramfs")
	var b bytes.Buffer
	res, err := Build(context.Background(), &b, Options{Root: os.DirFS(k.Root), KernelVersion: k.Version, Init: init, Arch: "amd64", ModTime: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	if res.Compression != Zstd {
		t.Errorf("compression %s: Debian's kernel has CONFIG_RD_ZSTD=y", res.Compression)
	}
	if err := os.WriteFile(img, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, "-machine", "q35", "-m", "512", "-smp", "1", "-nographic", "-no-reboot",
		"-nic", "none", "-kernel", k.Vmlinuz, "-initrd", img, "-append", "console=ttyS0 panic=-1 quiet")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("QEMU did not power off within 5 minutes:\n%s", tail(out))
	}
	if err != nil {
		t.Fatalf("qemu: %v\n%s", err, tail(out))
	}
	console := strings.ReplaceAll(string(out), "\r", "")
	if !strings.Contains(console, "RACKLET-TESTINIT-START") || !strings.Contains(console, "RACKLET-TESTINIT-DONE") {
		t.Fatalf("the test init did not run to its end:\n%s", tail(out))
	}
	loaded := map[string]bool{}
	for _, l := range strings.Split(console, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "module":
			// ENODEV: a module for hardware QEMU lacks (crc32c_intel needs SSE 4.2).
			if f[2] != "ok" && f[2] != "ENODEV" {
				t.Errorf("loading %s: %s", f[1], strings.Join(f[2:], " "))
			}
		case len(f) == 2 && f[0] == "loaded":
			loaded[f[1]] = true
		}
	}
	for _, want := range []string{"dm_verity", "dm_bufio", "dm_mod", "dm_crypt", "squashfs", "overlay", "loop", "ext4", "virtio_net", "virtio_console"} {
		if !loaded[want] {
			t.Errorf("/proc/modules lacks %s after the boot:\n%s", want, tail(out))
		}
	}
	t.Logf("kernel %s booted the initramfs (%d bytes zstd, %d modules) to power-off in %v",
		k.Version, b.Len(), len(res.Modules), time.Since(start).Round(time.Second))
}

func tail(b []byte) string {
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
