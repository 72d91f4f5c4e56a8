// Package vmtest gives tests a real x86-64 Linux machine under QEMU (TCG):
// Debian's amd64 kernel and its modules (downloaded once with apt-get and
// cached), an initramfs written with u-root's cpio writer from the files a
// test chooses, static Go binaries built for it, and a bounded QEMU run whose
// serial console the test reads.
package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// Kernel is an unpacked Debian kernel package.
type Kernel struct {
	Vmlinuz string // the kernel image
	Root    string // the unpacked package: Root/lib/modules/<Version>
	Version string // uname -r
}

// ModulesDir is Root/lib/modules/<Version>.
func (k Kernel) ModulesDir() string { return filepath.Join(k.Root, "lib", "modules", k.Version) }

// CacheDir is ${RACKLET_CACHE:-$HOME/.cache/racklet}.
func CacheDir() string {
	if d := os.Getenv("RACKLET_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "racklet-cache")
	}
	return filepath.Join(home, ".cache", "racklet")
}

var (
	kernelOnce sync.Once
	kernel     Kernel
	kernelErr  error
)

// DebianKernel returns Debian's current amd64 kernel (the package
// linux-image-amd64 depends on), unpacked with dpkg-deb and with modules.dep
// made by depmod, cached under CacheDir()/debian-kernel-amd64. It needs
// apt-get, dpkg-deb and depmod (package kmod).
func DebianKernel(t testing.TB) Kernel {
	t.Helper()
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb", "depmod"} {
		testutil.NeedTool(t, tool)
	}
	kernelOnce.Do(func() { kernel, kernelErr = fetchKernel(filepath.Join(CacheDir(), "debian-kernel-amd64")) })
	if kernelErr != nil {
		t.Fatal(kernelErr)
	}
	return kernel
}

func fetchKernel(cache string) (Kernel, error) {
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Kernel{}, err
	}
	// One process fills the cache; others wait on the lock.
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return Kernel{}, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return Kernel{}, err
	}
	if k, ok := cachedKernel(filepath.Join(cache, "root")); ok {
		return k, nil
	}
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		return Kernel{}, fmt.Errorf("apt-cache depends linux-image-amd64: %w", err)
	}
	pkg := ""
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
			pkg = f[1]
		}
	}
	if pkg == "" {
		return Kernel{}, fmt.Errorf("no kernel package behind linux-image-amd64 (run apt-get update): %s", out)
	}
	tmp, err := os.MkdirTemp(cache, "fetch-")
	if err != nil {
		return Kernel{}, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return Kernel{}, fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) == 0 {
		return Kernel{}, fmt.Errorf("apt-get download %s left no .deb", pkg)
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return Kernel{}, fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}
	vers, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*"))
	if len(vers) != 1 {
		return Kernel{}, fmt.Errorf("%s holds %d module trees, want 1", debs[0], len(vers))
	}
	// Debian's kernel packages ship no modules.dep: depmod makes it at install.
	if out, err := exec.Command("depmod", "-b", root, filepath.Base(vers[0])).CombinedOutput(); err != nil {
		return Kernel{}, fmt.Errorf("depmod: %w: %s", err, out)
	}
	if err := os.Rename(root, filepath.Join(cache, "root")); err != nil {
		return Kernel{}, err
	}
	k, ok := cachedKernel(filepath.Join(cache, "root"))
	if !ok {
		return Kernel{}, fmt.Errorf("unpacked %s has no vmlinuz or modules.dep", pkg)
	}
	return k, nil
}

func cachedKernel(root string) (Kernel, bool) {
	vm, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vm) != 1 {
		return Kernel{}, false
	}
	k := Kernel{Vmlinuz: vm[0], Root: root, Version: strings.TrimPrefix(filepath.Base(vm[0]), "vmlinuz-")}
	if _, err := os.Stat(filepath.Join(k.ModulesDir(), "modules.dep")); err != nil {
		return Kernel{}, false
	}
	return k, true
}
