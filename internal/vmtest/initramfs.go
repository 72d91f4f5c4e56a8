package vmtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
	"github.com/u-root/u-root/pkg/kmodule"
)

// ModulesList is where the initramfs names the modules its init loads, one
// per line in load order (the contract with racklet-agent).
const ModulesList = "etc/racklet/modules"

// Initramfs collects the files of a newc initramfs. Parent directories are
// added as needed; records are written sorted, with zero times.
type Initramfs struct {
	recs map[string]cpio.Record
}

// NewInitramfs starts an initramfs with the directories an init needs.
func NewInitramfs() *Initramfs {
	i := &Initramfs{recs: map[string]cpio.Record{}}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "etc", "newroot"} {
		i.Dir(d)
	}
	return i
}

// Dir adds a directory (and its parents).
func (i *Initramfs) Dir(name string) {
	name = strings.Trim(name, "/")
	if name == "" || name == "." {
		return
	}
	i.Dir(filepath.Dir(name))
	if _, ok := i.recs[name]; !ok {
		i.recs[name] = cpio.Directory(name, 0o755)
	}
}

// File adds a regular file with the given bytes and permissions.
func (i *Initramfs) File(name string, data []byte, perm uint64) {
	name = strings.Trim(name, "/")
	i.Dir(filepath.Dir(name))
	i.recs[name] = cpio.StaticRecord(data, cpio.Info{Name: name, Mode: cpio.S_IFREG | perm})
}

// Symlink adds a symbolic link.
func (i *Initramfs) Symlink(name, target string) {
	name = strings.Trim(name, "/")
	i.Dir(filepath.Dir(name))
	i.recs[name] = cpio.Symlink(name, target)
}

// HostFile copies a file of this machine into the initramfs as name.
func (i *Initramfs) HostFile(t testing.TB, name, hostPath string) {
	t.Helper()
	b, err := os.ReadFile(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(hostPath)
	if err != nil {
		t.Fatal(err)
	}
	i.File(name, b, uint64(st.Mode().Perm()))
}

// DynamicBinary copies a dynamically linked program of this machine with
// the shared libraries ldd lists, at the same paths.
func (i *Initramfs) DynamicBinary(t testing.TB, path string) {
	t.Helper()
	i.HostFile(t, path, path)
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", path, err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for _, f := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(f, "/") {
				real, err := filepath.EvalSymlinks(f)
				if err != nil {
					t.Fatal(err)
				}
				i.HostFile(t, f, real)
			}
		}
	}
}

// Modules copies the named modules of k with everything they depend on
// (ModuleFiles), modules.dep and modules.builtin, and writes ModulesList
// naming the copied files in load order, as image/initramfs does.
// It returns the module files copied, in a valid load order.
func (i *Initramfs) Modules(t testing.TB, k Kernel, names ...string) []string {
	t.Helper()
	files := ModuleFiles(t, k, names...)
	dir := filepath.Join("lib", "modules", k.Version)
	var list []string
	for _, f := range files {
		rel, err := filepath.Rel(k.Root, f)
		if err != nil {
			t.Fatal(err)
		}
		i.HostFile(t, rel, f)
		list = append(list, "/"+rel)
	}
	for _, f := range ModuleIndexes {
		if _, err := os.Stat(filepath.Join(k.ModulesDir(), f)); err == nil {
			i.HostFile(t, filepath.Join(dir, f), filepath.Join(k.ModulesDir(), f))
		}
	}
	i.File(ModulesList, []byte(strings.Join(list, "\n")+"\n"), 0o644)
	return files
}

// ModuleIndexes are the files of /lib/modules/<version> that index its
// modules (depmod's output a module loader reads).
var ModuleIndexes = []string{"modules.dep", "modules.builtin", "modules.order"}

// ModuleFiles returns the module files (paths under k.Root) of the named
// modules of k and everything they depend on, resolved from modules.dep by
// u-root's kmodule, in a valid load order. Built-in modules have no file.
func ModuleFiles(t testing.TB, k Kernel, names ...string) []string {
	t.Helper()
	var (
		mu    sync.Mutex
		files []string
	)
	opts := kmodule.ProbeOpts{RootDir: k.Root, KVer: k.Version, IgnoreProcMods: true,
		DryRunCB: func(p string) {
			mu.Lock()
			defer mu.Unlock()
			if !slices.Contains(files, p) {
				files = append(files, p)
			}
		}}
	p, err := kmodule.NewProber(opts)
	if err != nil {
		t.Fatalf("read modules.dep of %s: %v", k.Version, err)
	}
	for _, n := range names {
		if err := p.Probe(n, ""); err != nil {
			t.Fatalf("module %s of %s: %v", n, k.Version, err)
		}
	}
	return files
}

// Write writes the archive (uncompressed newc) to path.
func (i *Initramfs) Write(t testing.TB, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := make([]string, 0, len(i.recs))
	for n := range i.recs {
		names = append(names, n)
	}
	slices.Sort(names)
	w := cpio.Newc.Writer(f)
	for _, n := range names {
		if err := w.WriteRecord(i.recs[n]); err != nil {
			t.Fatalf("write initramfs: %v", err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatalf("write initramfs: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// GoBinary builds a static Go program (a package path or directory) for
// linux/amd64 into dir and returns its path.
func GoBinary(t testing.TB, pkg, dir string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// GoTestBinary builds the test binary of a package (static, linux/amd64).
func GoTestBinary(t testing.TB, pkg, out string) {
	t.Helper()
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c %s: %v\n%s", pkg, err, b)
	}
}

// String lists the archive's names, for failure messages.
func (i *Initramfs) String() string {
	names := make([]string, 0, len(i.recs))
	for n := range i.recs {
		names = append(names, n)
	}
	slices.Sort(names)
	return fmt.Sprint(names)
}
