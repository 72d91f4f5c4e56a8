package image

import (
	"bytes"
	"fmt"
	"io"
	"path"

	"github.com/racklet/racklet-boot/image/fat"
	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/image/uki"
)

// efiStubs are systemd's EFI stubs (Debian's systemd-boot-efi) by architecture, and the name
// a UEFI PXE client of that architecture loads (racklet-boot's DHCP default for its arch).
var efiStubs = map[string]struct{ stub, name string }{
	"arm64": {"usr/lib/systemd/boot/efi/linuxaa64.efi.stub", "bootaa64.efi"},
	"amd64": {"usr/lib/systemd/boot/efi/linuxx64.efi.stub", "bootx64.efi"},
}

// unifiedImage makes the unified kernel image of a generic boot partition when the root holds
// systemd's EFI stub for arch: the stub with the root's os-release, the command line, the
// kernel and the initramfs as sections (package uki), for UEFI PXE clients such as EDK2,
// which cannot hand a bare kernel an initrd and a command line. The kernel and initramfs
// sections hold exactly the bytes of the partition's vmlinuz and initramfs, so racklet-agent
// measures and racklet-boot expects the same files whichever way the node booted; systemd-stub
// hands the initramfs to the kernel by LoadFile2, where the agent finds it (the EFI stub's
// initrd table). It returns nil when the root has no stub.
func unifiedImage(tree *flatten.Tree, arch string, kernel fat.File, initrd []byte, cmdline string) (*fat.File, error) {
	s, ok := efiStubs[arch]
	if !ok {
		return nil, nil
	}
	n := tree.Lookup(s.stub)
	if n == nil || n.Inode.Kind != flatten.Regular {
		return nil, nil
	}
	stub, err := readInode(n.Inode)
	if err != nil {
		return nil, fmt.Errorf("read the EFI stub /%s: %w", s.stub, err)
	}
	rc, err := kernel.Open()
	if err != nil {
		return nil, fmt.Errorf("read kernel %s: %w", kernel.Path, err)
	}
	k, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read kernel %s: %w", kernel.Path, err)
	}
	var osrel []byte
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if o := tree.Lookup(p); o != nil && o.Inode.Kind == flatten.Regular {
			if osrel, err = readInode(o.Inode); err != nil {
				return nil, fmt.Errorf("read /%s: %w", p, err)
			}
			break
		}
	}
	var b bytes.Buffer
	if err := uki.Write(&b, stub, uki.Sections(osrel, []byte(cmdline), k, initrd)); err != nil {
		return nil, fmt.Errorf("unified kernel image from /%s: %w", path.Clean(s.stub), err)
	}
	f := memFile(s.name, b.Bytes())
	return &f, nil
}
