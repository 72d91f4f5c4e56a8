package initramfs

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
)

// ModuleList is where the initramfs lists the modules its /init loads, in order.
const ModuleList = "etc/racklet/modules"

// Required are the modules every node's boot path needs: device-mapper with the verity
// target for the root, squashfs, overlay and loop to mount it, dm-crypt and ext4 for an
// encrypted data partition. A kernel that has one neither as a module nor built in cannot
// boot a racklet image.
var Required = []string{"dm-mod", "dm-verity", "dm-crypt", "squashfs", "overlay", "loop", "ext4"}

// Drivers are the network, console and random-number drivers of the machines racklet boots,
// copied when the kernel has them: QEMU's virtio NIC, PCI transport, serial ports (the HAT
// link under QEMU) and RNG everywhere, and on arm64 and arm the Raspberry Pi 4's Ethernet
// (bcmgenet, its PHY and its MDIO bus) and RNG (iproc-rng200). A hardware RNG readies the
// kernel's random generator at once; without one the agent's first getrandom waits for
// jitter entropy (2-3 s under QEMU TCG, before DHCP can start).
func Drivers(arch string) []string {
	d := []string{"virtio_net", "virtio_pci", "virtio_console", "virtio-rng"}
	if arch == "arm64" || arch == "arm" {
		d = append([]string{"bcmgenet", "broadcom", "mdio-bcm-unimac", "iproc-rng200"}, d...)
	}
	return d
}

// Options says what goes into an initramfs.
type Options struct {
	// Root is the base image's root file system.
	Root fs.FS
	// KernelVersion names the module directory (lib/modules/<version> or usr/lib/modules/<version>)
	// and the kernel config (boot/config-<version>).
	KernelVersion string
	// Init is the path, on the build machine, of the static executable that becomes /init.
	Init string
	// Arch is the GOARCH of the image; Init must be a static executable for it.
	Arch string
	// Modules are required on top of Required.
	Modules []string
	// Compression of the archive; "" picks from the kernel config (ChooseCompression).
	Compression Compression
	// ModTime is the modification time of every member (the build epoch).
	ModTime int64
	// Files are more regular files (path in the archive → content, mode
	// 0644), e.g. racklet-boot's server key at bootparams.ServerKeyFile.
	Files map[string][]byte
}

// Result describes a written initramfs.
type Result struct {
	Compression Compression
	// Modules lists the module files /init loads, in order, as absolute paths.
	Modules []string
	// Builtin and Missing are as in Resolution.
	Builtin, Missing []string
	// RawSize is the size of the uncompressed cpio archive.
	RawSize int64
}

// Build writes the initramfs of opts to w.
func Build(ctx context.Context, w io.Writer, opts Options) (*Result, error) {
	if err := CheckInit(opts.Init, opts.Arch); err != nil {
		return nil, err
	}
	a := NewArchive()
	for _, d := range []string{"dev", "proc", "sys", "run", "etc/racklet"} {
		if err := a.Dir(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := a.Dir("tmp", 0o1777); err != nil {
		return nil, err
	}
	// The kernel opens /dev/console for init's standard streams before anything is mounted.
	if err := a.CharDev("dev/console", 0o600, 5, 1); err != nil {
		return nil, err
	}
	fi, err := os.Stat(opts.Init)
	if err != nil {
		return nil, fmt.Errorf("initramfs /init: %w", err)
	}
	if err := a.File("init", 0o755, fi.Size(), func() (io.ReaderAt, error) { return os.Open(opts.Init) }); err != nil {
		return nil, err
	}
	for _, p := range slices.Sorted(maps.Keys(opts.Files)) {
		if err := a.Bytes(p, 0o644, opts.Files[p]); err != nil {
			return nil, err
		}
	}
	res, err := addModules(ctx, a, opts)
	if err != nil {
		return nil, err
	}
	if res.Compression = opts.Compression; res.Compression == "" {
		if res.Compression, err = compressionFor(opts.Root, opts.KernelVersion); err != nil {
			return nil, err
		}
	}
	cw := &countWriter{w: w}
	zw, err := compressor(cw, res.Compression)
	if err != nil {
		return nil, err
	}
	raw := &countWriter{w: zw}
	if err := a.WriteTo(raw, opts.ModTime); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compress initramfs: %w", err)
	}
	res.RawSize = raw.n
	return res, ctx.Err()
}

// ErrNoModules means the base has no module directory for its kernel.
var ErrNoModules = errors.New("no kernel modules in the base")

// ModulesDir returns the module directory of a kernel version in root: lib/modules/<version>,
// else usr/lib/modules/<version> (a merged /usr).
func ModulesDir(root fs.FS, version string) (string, error) {
	if version == "" || strings.ContainsAny(version, "/") {
		return "", fmt.Errorf("%w: no /lib/modules/<version> directory: "+
			"racklet's initramfs carries the kernel's modules (install the kernel package in the base)", ErrNoModules)
	}
	for _, d := range []string{"lib/modules/", "usr/lib/modules/"} {
		if fi, err := fs.Stat(root, d+version); err == nil && fi.IsDir() {
			return d + version, nil
		}
	}
	return "", fmt.Errorf("%w: no /lib/modules/%s", ErrNoModules, version)
}

// LoadIndex reads the module metadata of dir in root. modules.dep is required: Debian's kernel
// packages leave it to depmod, which their installation runs (or run depmod -b ROOT VERSION
// on an unpacked package).
func LoadIndex(root fs.FS, dir string) (*Index, error) {
	ix := &Index{}
	b, err := fs.ReadFile(root, dir+"/modules.dep")
	if err != nil {
		return nil, fmt.Errorf("read /%s/modules.dep (made by depmod when the kernel is installed; "+
			"run depmod -b ROOT VERSION on an unpacked kernel): %w", dir, err)
	}
	if ix.Deps, err = ParseDep(bytes.NewReader(b)); err != nil {
		return nil, fmt.Errorf("/%s: %w", dir, err)
	}
	optional := func(name string, parse func([]byte) error) error {
		b, err := fs.ReadFile(root, dir+"/"+name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err == nil {
			err = parse(b)
		}
		if err != nil {
			return fmt.Errorf("/%s: %w", dir, err)
		}
		return nil
	}
	err = errors.Join(
		optional("modules.builtin", func(b []byte) (err error) { ix.Builtin, err = ParseBuiltin(bytes.NewReader(b)); return }),
		optional("modules.softdep", func(b []byte) (err error) { ix.Pre, ix.Post, err = ParseSoftdep(bytes.NewReader(b)); return }),
		optional("modules.alias", func(b []byte) (err error) { ix.Aliases, err = ParseAlias(bytes.NewReader(b)); return }),
		optional("modules.builtin.modinfo", func(b []byte) error { ix.BuiltinAliases = ParseBuiltinModinfo(b); return nil }),
	)
	if err != nil {
		return nil, err
	}
	ix.index()
	return ix, nil
}

// addModules resolves the modules, copies their files to /lib/modules/<version> with a
// modules.dep, modules.alias and modules.softdep cut down to them and modules.builtin as is,
// and writes the load order to ModuleList.
func addModules(ctx context.Context, a *Archive, opts Options) (*Result, error) {
	dir, err := ModulesDir(opts.Root, opts.KernelVersion)
	if err != nil {
		return nil, err
	}
	ix, err := LoadIndex(opts.Root, dir)
	if err != nil {
		return nil, err
	}
	rs, err := ix.Resolve(append(append([]string{}, Required...), opts.Modules...), Drivers(opts.Arch))
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", opts.KernelVersion, err)
	}
	dst := "lib/modules/" + opts.KernelVersion
	res := &Result{Builtin: rs.Builtin, Missing: rs.Missing}
	in := map[string]bool{}
	var dep, list strings.Builder
	for _, p := range rs.Load {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(opts.Root, dir+"/"+p)
		if err != nil {
			return nil, fmt.Errorf("kernel module %s: %w", p, err)
		}
		if err := a.Bytes(dst+"/"+p, 0o644, b); err != nil {
			return nil, err
		}
		in[ModuleName(p)] = true
		fmt.Fprintf(&dep, "%s:", p)
		for _, d := range ix.Deps[p] {
			fmt.Fprintf(&dep, " %s", d)
		}
		dep.WriteString("\n")
		res.Modules = append(res.Modules, "/"+dst+"/"+p)
		fmt.Fprintf(&list, "/%s/%s\n", dst, p)
	}
	var alias, soft strings.Builder
	for _, al := range ix.Aliases {
		if in[al[1]] {
			fmt.Fprintf(&alias, "alias %s %s\n", al[0], al[1])
		}
	}
	for _, p := range rs.Load {
		n := ModuleName(p)
		if len(ix.Pre[n])+len(ix.Post[n]) > 0 {
			fmt.Fprintf(&soft, "softdep %s", n)
			for _, s := range []struct {
				key   string
				names []string
			}{{"pre:", ix.Pre[n]}, {"post:", ix.Post[n]}} {
				if len(s.names) > 0 {
					fmt.Fprintf(&soft, " %s %s", s.key, strings.Join(s.names, " "))
				}
			}
			soft.WriteString("\n")
		}
	}
	builtin, err := fs.ReadFile(opts.Root, dir+"/modules.builtin")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read /%s/modules.builtin: %w", dir, err)
	}
	for name, body := range map[string]string{"modules.dep": dep.String(), "modules.alias": alias.String(),
		"modules.softdep": soft.String(), "modules.builtin": string(builtin)} {
		if err := a.Bytes(path.Join(dst, name), 0o644, []byte(body)); err != nil {
			return nil, err
		}
	}
	if err := a.Bytes(ModuleList, 0o644, []byte(list.String())); err != nil {
		return nil, err
	}
	return res, nil
}

// compressionFor reads boot/config-<version> of root and picks the compression.
func compressionFor(root fs.FS, version string) (Compression, error) {
	f, err := root.Open("boot/config-" + version)
	if errors.Is(err, fs.ErrNotExist) {
		return ChooseCompression(nil)
	}
	if err != nil {
		return "", fmt.Errorf("read kernel config: %w", err)
	}
	defer f.Close()
	cfg, err := ParseKernelConfig(f)
	if err != nil {
		return "", err
	}
	c, err := ChooseCompression(cfg)
	if err != nil {
		return "", fmt.Errorf("/boot/config-%s: %w", version, err)
	}
	return c, nil
}

// machines maps GOARCH to the ELF machine of its executables.
var machines = map[string]elf.Machine{
	"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "arm": elf.EM_ARM, "386": elf.EM_386, "riscv64": elf.EM_RISCV,
}

// ErrInit means the /init executable does not fit the image.
var ErrInit = errors.New("unsuitable initramfs /init")

// CheckInit checks that p is a static ELF executable for arch: an initramfs has no dynamic
// loader or libraries, and a binary for another architecture cannot run.
func CheckInit(p, arch string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInit, p, err)
	}
	defer f.Close()
	if want, ok := machines[arch]; !ok {
		return fmt.Errorf("%w: no ELF machine known for architecture %q", ErrInit, arch)
	} else if f.Machine != want {
		return fmt.Errorf("%w: %s is a %v executable, the image is %s (%v)", ErrInit, p, f.Machine, arch, want)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: %s is not an executable (%v)", ErrInit, p, f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked: build it with CGO_ENABLED=0", ErrInit, p)
		}
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}
