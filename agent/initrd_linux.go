//go:build linux

package agent

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"strconv"

	"github.com/u-root/u-root/pkg/dt"
	"golang.org/x/sys/unix"
)

// Where the kernel says where the loader put the initramfs.
const (
	bootParamsFile = "/sys/kernel/boot_params/data"                            // x86: struct boot_params
	dtInitrdStart  = "/sys/firmware/devicetree/base/chosen/linux,initrd-start" // device-tree machines (Pi)
	dtInitrdEnd    = "/sys/firmware/devicetree/base/chosen/linux,initrd-end"
	kcoreFile      = "/proc/kcore"
	// fdtFile is the flattened device tree the kernel booted with, as
	// passed: under ACPI it is a UEFI loader's (GRUB's) or the EFI stub's.
	fdtFile = "/sys/firmware/fdt"
)

// loadedInitrdDigest hashes the initramfs as the loader handed it to the
// kernel. Newer kernels expose it as /sys/firmware/initrd under
// retain_initrd; Debian 12's 6.1 does not, so the agent finds the loader's
// physical range (x86 boot_params, or the device tree's /chosen) and reads
// it through /proc/kcore, whose RAM segments carry their physical address.
// retain_initrd keeps the range from being freed. The first bytes must be
// an initramfs (cpio or a compressor's magic), or the range was reused.
func loadedInitrdDigest() (string, error) {
	if f, err := os.Open(InitrdFile); err == nil {
		defer f.Close()
		return hashReader(f, InitrdFile)
	}
	kc, err := os.Open(kcoreFile)
	if err != nil {
		return "", fmt.Errorf("read the loaded initramfs: %w", err)
	}
	defer kc.Close()
	start, size, err := initrdRange(bootParamsFile, dtInitrdStart, dtInitrdEnd)
	if err != nil {
		// A UEFI machine booted with ACPI (arm64 under EDK2) shows no
		// device tree in sysfs: the loader's own flattened tree (GRUB puts
		// the range in it), else the EFI stub's LoadFile2 table (a unified
		// kernel image's systemd-stub).
		var errs []error
		if start, size, errs = uefiInitrdRange(fdtFile, kc); start == 0 {
			return "", errors.Join(append([]error{err}, errs...)...)
		}
	}
	r, err := physReader(kc, start, size)
	if err != nil {
		return "", err
	}
	head := make([]byte, 6)
	if _, err := r.ReadAt(head, 0); err != nil {
		return "", fmt.Errorf("read the loaded initramfs at %#x: %w", start, err)
	}
	if !initramfsMagic(head) {
		return "", fmt.Errorf("the memory at %#x (%d bytes) no longer holds the initramfs (is retain_initrd on the kernel command line?)", start, size)
	}
	return hashReader(io.NewSectionReader(r, 0, size), "the loaded initramfs")
}

func hashReader(r io.Reader, what string) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// initrdRange returns the loader's initramfs range: from x86's
// boot_params (ramdisk_image and ramdisk_size, with their ext_ high
// halves), else from the device tree.
func initrdRange(bootParams, dtStart, dtEnd string) (start uint64, size int64, err error) {
	if b, err := os.ReadFile(bootParams); err == nil && len(b) >= 0x220 {
		le := binary.LittleEndian
		start = uint64(le.Uint32(b[0x218:])) | uint64(le.Uint32(b[0x0c0:]))<<32
		size = int64(uint64(le.Uint32(b[0x21c:])) | uint64(le.Uint32(b[0x0c4:]))<<32)
		if size == 0 {
			return 0, 0, errors.New("the boot loader passed no initramfs (boot_params ramdisk_size is 0)")
		}
		return start, size, nil
	}
	s, err1 := readBE(dtStart)
	e, err2 := readBE(dtEnd)
	if err := errors.Join(err1, err2); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, 0, fmt.Errorf("the kernel shows neither %s, %s nor %s: cannot find the loaded initramfs", InitrdFile, bootParams, dtStart)
		}
		return 0, 0, err
	}
	if e <= s {
		return 0, 0, fmt.Errorf("the device tree's initramfs range %#x-%#x is empty", s, e)
	}
	return s, int64(e - s), nil
}

// readBE reads a device-tree cell of 4 or 8 bytes, big-endian.
func readBE(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	switch len(b) {
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	case 8:
		return binary.BigEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("%s holds %d bytes, want 4 or 8", path, len(b))
}

// physReader finds the kcore segment holding [start, start+size) by its
// physical address.
func physReader(kcore io.ReaderAt, start uint64, size int64) (io.ReaderAt, error) {
	ef, err := elf.NewFile(kcore)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", kcoreFile, err)
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD || p.Paddr == ^uint64(0) || start < p.Paddr || start+uint64(size) > p.Paddr+p.Memsz {
			continue
		}
		return io.NewSectionReader(kcore, int64(p.Off+(start-p.Paddr)), size), nil
	}
	return nil, fmt.Errorf("no RAM segment of %s holds the initramfs at %#x+%d", kcoreFile, start, size)
}

// initramfsMagic reports whether b starts like an initramfs: newc cpio, or
// gzip, xz, zstd, lz4, bzip2 or lzma data.
func initramfsMagic(b []byte) bool {
	for _, m := range [][]byte{[]byte("070701"), []byte("070702"), {0x1f, 0x8b}, {0xfd, '7', 'z', 'X', 'Z'},
		{0x28, 0xb5, 0x2f, 0xfd}, {0x02, 0x21, 0x4c, 0x18}, []byte("BZh"), {0x5d, 0x00, 0x00}} {
		if len(b) >= len(m) && string(b[:len(m)]) == string(m) {
			return true
		}
	}
	return false
}

// uefiInitrdRange finds the initramfs a UEFI loader handed an arm64 kernel
// that boots with ACPI, where Linux 6.1 shows no device tree in sysfs:
//   - GRUB writes linux,initrd-start/-end into the flattened tree it
//     passes, which the kernel keeps readable as /sys/firmware/fdt;
//   - the EFI stub loading it through LoadFile2 (systemd-stub in a unified
//     kernel image) passes it in an EFI configuration table
//     (LINUX_EFI_INITRD_MEDIA: base and size, 8 bytes each) whose address
//     6.1 shows only in its boot log ("efi: … INITRD=0x…"); the table is
//     read through /proc/kcore. The kernel does not reserve the table's
//     page: a range read from it must still start like an initramfs
//     (checked by the caller), and if the page was reused its digest can
//     only fail to match, never match falsely.
//
// start is 0 when neither gives a range; errs say why.
func uefiInitrdRange(fdt string, kcore io.ReaderAt) (start uint64, size int64, errs []error) {
	start, size, err := fdtInitrdRange(fdt)
	if err == nil {
		return start, size, nil
	}
	errs = append(errs, err)
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return 0, 0, append(errs, fmt.Errorf("read the kernel log: %w", err))
	}
	start, size, err = efiInitrdTable(buf[:max(n, 0)], kcore)
	if err != nil {
		return 0, 0, append(errs, err)
	}
	return start, size, nil
}

// fdtInitrdRange reads /chosen linux,initrd-start and -end of a flattened
// device tree blob (u-root's pkg/dt).
func fdtInitrdRange(path string) (uint64, int64, error) {
	t, err := dt.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", path, err)
	}
	chosen, ok := t.RootNode.LookupChildByName("chosen")
	if !ok {
		return 0, 0, fmt.Errorf("%s has no /chosen", path)
	}
	cell := func(name string) (uint64, error) {
		p, ok := chosen.LookProperty(name)
		if !ok {
			return 0, fmt.Errorf("%s: /chosen has no %s", path, name)
		}
		switch len(p.Value) {
		case 4:
			return uint64(binary.BigEndian.Uint32(p.Value)), nil
		case 8:
			return binary.BigEndian.Uint64(p.Value), nil
		}
		return 0, fmt.Errorf("%s: /chosen/%s holds %d bytes, want 4 or 8", path, name, len(p.Value))
	}
	s, err1 := cell("linux,initrd-start")
	e, err2 := cell("linux,initrd-end")
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, err
	}
	if e <= s {
		return 0, 0, fmt.Errorf("%s: the initramfs range %#x-%#x is empty", path, s, e)
	}
	return s, int64(e - s), nil
}

// efiInitrdLine finds the LINUX_EFI_INITRD_MEDIA table in the EFI line of
// the kernel's boot log.
var efiInitrdLine = regexp.MustCompile(`efi: [^\n]*\bINITRD=0x([0-9a-f]+)`)

// efiInitrdTable reads the initramfs range from the EFI stub's
// LINUX_EFI_INITRD_MEDIA table, found through the kernel log klog.
func efiInitrdTable(klog []byte, kcore io.ReaderAt) (uint64, int64, error) {
	m := efiInitrdLine.FindSubmatch(klog)
	if m == nil {
		return 0, 0, errors.New("the kernel log names no EFI initrd table (efi: … INITRD=)")
	}
	addr, err := strconv.ParseUint(string(m[1]), 16, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("EFI initrd table address %q: %w", m[1], err)
	}
	r, err := physReader(kcore, addr, 16)
	if err != nil {
		return 0, 0, err
	}
	var tbl [16]byte
	if _, err := r.ReadAt(tbl[:], 0); err != nil {
		return 0, 0, fmt.Errorf("read the EFI initrd table at %#x: %w", addr, err)
	}
	base, size := binary.LittleEndian.Uint64(tbl[:8]), binary.LittleEndian.Uint64(tbl[8:])
	if base == 0 || size == 0 || size > 1<<30 {
		return 0, 0, fmt.Errorf("the EFI initrd table at %#x holds base %#x size %d: not an initramfs range (reused memory?)", addr, base, size)
	}
	return base, int64(size), nil
}
