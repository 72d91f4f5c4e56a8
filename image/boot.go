package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/racklet/racklet-boot/image/fat"
	"github.com/racklet/racklet-boot/image/flatten"
)

// ErrNoBoot means the root file system has no boot directory to build the boot partition from.
var ErrNoBoot = errors.New("no boot files in the root file system")

// defaultConfigTxt is used when neither the spec nor the base supplies config.txt.
const defaultConfigTxt = "# Rendered by racklet-image.\narm_64bit=1\nenable_uart=1\n"

// bootDir finds the boot directory of the tree: the spec's, else boot/firmware, else boot.
func bootDir(t *flatten.Tree, want string) (string, *flatten.Node, error) {
	cands := []string{"boot/firmware", "boot"}
	if want != "" {
		cands = []string{strings.Trim(path.Clean("/"+want), "/")}
	}
	for _, c := range cands {
		if n := t.Lookup(c); n != nil && n.Inode.Kind == flatten.Dir && len(n.Children) > 0 {
			return c, n, nil
		}
	}
	return "", nil, fmt.Errorf("looked in /%s: %w", strings.Join(cands, ", /"), ErrNoBoot)
}

// bootFiles lists the regular files under the boot directory (symlinks to regular files in
// the same directory tree are followed once), without config.txt and cmdline.txt, and returns
// the base's config.txt content when it has one.
func bootFiles(t *flatten.Tree, dir string) ([]fat.File, []byte, error) {
	var files []fat.File
	var config []byte
	prefix := dir + "/"
	err := t.Walk(func(p string, n *flatten.Node) error {
		if !strings.HasPrefix(p, prefix) {
			return nil
		}
		rel := strings.TrimPrefix(p, prefix)
		in := n.Inode
		if in.Kind == flatten.Symlink {
			target := path.Join(path.Dir(p), in.Target)
			if strings.HasPrefix(in.Target, "/") {
				target = strings.TrimPrefix(path.Clean(in.Target), "/")
			}
			tn := t.Lookup(target)
			if tn == nil || tn.Inode.Kind != flatten.Regular || !strings.HasPrefix(target, prefix) {
				return nil
			}
			in = tn.Inode
		}
		if in.Kind != flatten.Regular {
			return nil
		}
		switch rel {
		case "config.txt":
			b, err := readInode(in)
			if err != nil {
				return err
			}
			config = b
			return nil
		case "cmdline.txt":
			return nil
		}
		files = append(files, inodeFile(rel, in))
		return nil
	})
	return files, config, err
}

func inodeFile(rel string, in *flatten.Inode) fat.File {
	return fat.File{Path: rel, Size: in.Size, Open: func() (io.ReadCloser, error) {
		if in.Data == "" {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return os.Open(in.Data)
	}}
}

func readInode(in *flatten.Inode) ([]byte, error) {
	if in.Data == "" {
		return nil, nil
	}
	return os.ReadFile(in.Data)
}

func memFile(p string, b []byte) fat.File {
	return fat.File{Path: p, Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// kernelVersion is the last name under lib/modules (or usr/lib/modules), "" when none.
func kernelVersion(t *flatten.Tree) string {
	for _, d := range []string{"usr/lib/modules", "lib/modules"} {
		n := t.Lookup(d)
		if n == nil || n.Inode.Kind != flatten.Dir {
			continue
		}
		var names []string
		for name, c := range n.Children {
			if c.Inode.Kind == flatten.Dir {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			return names[len(names)-1]
		}
	}
	return ""
}

// ErrNoKernel means the boot partition would have no kernel to boot.
var ErrNoKernel = errors.New("no kernel in the base image")

// Names of racklet's initramfs in the boot partition.
const (
	PiInitramfs      = "initramfs8"
	GenericKernel    = "vmlinuz"
	GenericInitramfs = "initramfs"
)

// bootLayout is how the boot partition names the kernel and the initramfs.
type bootLayout struct {
	// pi: the Raspberry Pi firmware boots the partition (config.txt, start4.elf).
	pi                bool
	kernel, initramfs string
}

// isPiBoot tells a Raspberry Pi boot directory (/boot/firmware, config.txt, start*.elf, kernel8.img)
// from a generic /boot of a PC or UEFI distribution.
func isPiBoot(dir string, files []fat.File, config []byte, spec Spec) bool {
	if dir == "boot/firmware" || len(config) > 0 || spec.ConfigTxt != "" {
		return true
	}
	for _, f := range files {
		switch f.Path {
		case "start4.elf", "start.elf", "kernel8.img", "kernel_2712.img":
			return true
		}
	}
	return false
}

// layoutBoot names the kernel and the initramfs in the boot partition and returns the files
// to write. A Pi boots the kernel config.txt names (kernel=, default kernel8.img), taken from
// /boot/vmlinuz-<version> when the boot directory lacks it, and the initramfs initramfs8
// (config.txt gets "initramfs initramfs8 followkernel"). A generic boot directory's
// vmlinuz-<version> becomes vmlinuz and the initramfs is initramfs; Debian's own initrd.img
// (racklet boots its own), System.map and config files stay out.
func layoutBoot(tree *flatten.Tree, dir string, files []fat.File, config []byte, spec Spec, kver string) (bootLayout, []fat.File, []byte, error) {
	vmlinuz := kernelInode(tree, kver)
	if isPiBoot(dir, files, config, spec) {
		if len(config) == 0 {
			config = []byte(defaultConfigTxt)
		}
		l := bootLayout{pi: true, kernel: configKernel(config), initramfs: PiInitramfs}
		if !hasFile(files, l.kernel) {
			if vmlinuz == nil {
				return l, nil, nil, fmt.Errorf("%w: neither /%s/%s (config.txt's kernel) nor /boot/vmlinuz-%s", ErrNoKernel, dir, l.kernel, kver)
			}
			files = append(files, inodeFile(l.kernel, vmlinuz))
		}
		return l, files, withInitramfs(config, l.initramfs), nil
	}
	if vmlinuz == nil {
		return bootLayout{}, nil, nil, fmt.Errorf("%w: no /boot/vmlinuz-%s", ErrNoKernel, kver)
	}
	l := bootLayout{kernel: GenericKernel, initramfs: GenericInitramfs}
	var kept []fat.File
	for _, f := range files {
		if !strings.Contains(f.Path, "/") && distroBootFile(f.Path) {
			continue
		}
		kept = append(kept, f)
	}
	return l, append(kept, inodeFile(l.kernel, vmlinuz)), nil, nil
}

// distroBootFile tells the files of a Debian /boot that a racklet boot partition leaves out or
// renames: kernels, initrds, System.map and config.
func distroBootFile(name string) bool {
	for _, p := range []string{"vmlinuz", "initrd.img", "System.map", "config-"} {
		if name == p || strings.HasPrefix(name, p+"-") || strings.HasPrefix(name, p+".") || p == "config-" && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func hasFile(files []fat.File, name string) bool {
	for _, f := range files {
		if f.Path == name {
			return true
		}
	}
	return false
}

// configKernel is the last kernel= of config.txt (in any section), else kernel8.img.
func configKernel(config []byte) string {
	k := "kernel8.img"
	for _, l := range strings.Split(string(config), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "kernel="); ok && strings.TrimSpace(v) != "" {
			k = strings.TrimSpace(v)
		}
	}
	return k
}

// withInitramfs drops config.txt's initramfs and ramfsfile lines and loads name after the
// kernel, under [all] so that no conditional section above filters it out.
func withInitramfs(config []byte, name string) []byte {
	var b strings.Builder
	for _, l := range strings.SplitAfter(string(config), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "initramfs ") || strings.HasPrefix(t, "initramfs\t") || strings.HasPrefix(t, "ramfsfile=") {
			continue
		}
		b.WriteString(l)
	}
	if s := b.String(); s != "" && !strings.HasSuffix(s, "\n") {
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "[all]\ninitramfs %s followkernel\n", name)
	return []byte(b.String())
}
