package imagetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// Kernel is a real Debian x86-64 kernel package, unpacked, with the module metadata that
// depmod makes at installation.
type Kernel struct {
	// Root holds the unpacked package: boot/vmlinuz-<Version>, boot/config-<Version> and
	// lib/modules/<Version> with modules.dep.
	Root string
	// Version is the kernel release (uname -r).
	Version string
	// Vmlinuz is the path of the kernel image.
	Vmlinuz string
}

var (
	kernelOnce sync.Once
	kernel     Kernel
	kernelErr  error
)

// CacheDir is where tests keep expensive artifacts: $RACKLET_CACHE, else ~/.cache/racklet.
func CacheDir() string {
	if d := os.Getenv("RACKLET_CACHE"); d != "" {
		return d
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "racklet")
	}
	return filepath.Join(os.TempDir(), "racklet-cache")
}

// DebianKernel returns the kernel package that linux-image-amd64 depends on, fetched with
// apt-get download, unpacked with dpkg-deb -x and indexed with depmod -b, once per machine
// (cached under CacheDir by package name).
func DebianKernel(t testing.TB) Kernel {
	t.Helper()
	for _, tool := range []string{"apt-cache", "apt-get", "dpkg-deb", "depmod"} {
		testutil.NeedTool(t, tool)
	}
	kernelOnce.Do(func() { kernel, kernelErr = fetchKernel() })
	if kernelErr != nil {
		t.Fatal(kernelErr)
	}
	return kernel
}

func fetchKernel() (Kernel, error) {
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
	version := strings.TrimPrefix(pkg, "linux-image-")
	dir, err := unpackDeb(pkg, func(root string) error {
		if out, err := exec.Command("depmod", "-b", root, version).CombinedOutput(); err != nil {
			return fmt.Errorf("depmod -b %s %s: %w: %s", root, version, err, out)
		}
		return nil
	})
	if err != nil {
		return Kernel{}, err
	}
	return Kernel{Root: dir, Version: version, Vmlinuz: filepath.Join(dir, "boot", "vmlinuz-"+version)}, nil
}

var (
	debMu   sync.Mutex
	debDirs = map[string]string{}
)

// DebianPackage returns a directory holding the files of a Debian package, fetched with
// apt-get download and unpacked with dpkg-deb -x once per machine (cached under CacheDir by
// package name): a tool a test runs without installing the package and its dependencies.
func DebianPackage(t testing.TB, pkg string) string {
	t.Helper()
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		testutil.NeedTool(t, tool)
	}
	debMu.Lock()
	defer debMu.Unlock()
	if d, ok := debDirs[pkg]; ok {
		return d
	}
	d, err := unpackDeb(pkg, nil)
	if err != nil {
		t.Fatal(err)
	}
	debDirs[pkg] = d
	return d
}

// unpackDeb downloads and unpacks pkg into CacheDir()/debian/<pkg>, runs prepare on the
// unpacked tree before it becomes visible, and returns the directory. A directory already
// there is used as is; two processes racing both unpack and one rename wins.
func unpackDeb(pkg string, prepare func(root string) error) (string, error) {
	dir := filepath.Join(CacheDir(), "debian", pkg)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+pkg+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	dl := filepath.Join(tmp, "deb")
	if err := os.Mkdir(dl, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = dl
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
	if len(debs) == 0 {
		return "", fmt.Errorf("apt-get download %s left no .deb in %s", pkg, dl)
	}
	root := filepath.Join(tmp, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[0], err, out)
	}
	if prepare != nil {
		if err := prepare(root); err != nil {
			return "", err
		}
	}
	if err := os.Rename(root, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil // another test process unpacked it first
		}
		return "", fmt.Errorf("cache %s in %s: %w", pkg, dir, err)
	}
	return dir, nil
}
