//go:build linux

package agent

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/dt"
)

func TestInitrdRange(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bp := make([]byte, 4096)
	binary.LittleEndian.PutUint32(bp[0x218:], 0x1fd5_8000)
	binary.LittleEndian.PutUint32(bp[0x21c:], 7_654_321)
	binary.LittleEndian.PutUint32(bp[0x0c0:], 0x1) // ext_ramdisk_image: above 4 GiB
	x86 := file("boot_params", bp)
	noRamdisk := file("boot_params_empty", make([]byte, 4096))
	be32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	be64 := func(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
	for _, tc := range []struct {
		name                string
		bootParams, dtStart string
		dtEnd               string
		start               uint64
		size                int64
		err                 string
	}{
		{name: "x86 boot_params", bootParams: x86, start: 0x1_1fd5_8000, size: 7_654_321},
		{name: "x86 without initramfs", bootParams: noRamdisk, err: "passed no initramfs"},
		{name: "device tree, 32-bit cells", bootParams: filepath.Join(dir, "none"), dtStart: file("s32", be32(0x2eff_2000)), dtEnd: file("e32", be32(0x2f00_0000)), start: 0x2eff_2000, size: 0xe000},
		{name: "device tree, 64-bit cells", bootParams: filepath.Join(dir, "none"), dtStart: file("s64", be64(0x8000_0000)), dtEnd: file("e64", be64(0x8010_0000)), start: 0x8000_0000, size: 0x10_0000},
		{name: "device tree, empty range", bootParams: filepath.Join(dir, "none"), dtStart: file("s", be32(5)), dtEnd: file("e", be32(5)), err: "is empty"},
		{name: "nothing", bootParams: filepath.Join(dir, "none"), dtStart: filepath.Join(dir, "none"), dtEnd: filepath.Join(dir, "none"), err: "cannot find the loaded initramfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start, size, err := initrdRange(tc.bootParams, tc.dtStart, tc.dtEnd)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || start != tc.start || size != tc.size {
				t.Errorf("initrdRange = %#x, %d, %v; want %#x, %d", start, size, err, tc.start, tc.size)
			}
		})
	}
}

func TestInitramfsMagic(t *testing.T) {
	for in, want := range map[string]bool{"070701000": true, "\x1f\x8b\x08\x00": true, "\x28\xb5\x2f\xfd\x00": true,
		"\xfd7zXZ\x00": true, "\x00\x00\x00\x00\x00\x00": false, "07070": false} {
		if got := initramfsMagic([]byte(in)); got != want {
			t.Errorf("initramfsMagic(%q) = %v, want %v", in, got, want)
		}
	}
}

// fakeKcore is an ELF core file like /proc/kcore with one RAM segment at
// physical address paddr holding data.
func fakeKcore(t *testing.T, paddr uint64, data []byte) *bytes.Reader {
	t.Helper()
	const ehsize, phsize = 64, 56
	var b bytes.Buffer
	h := elf.Header64{Type: uint16(elf.ET_CORE), Machine: uint16(elf.EM_AARCH64), Version: uint32(elf.EV_CURRENT),
		Phoff: ehsize, Ehsize: ehsize, Phentsize: phsize, Phnum: 1, Shentsize: 64}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)
	p := elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R), Off: ehsize + phsize, Vaddr: 0xffff000000000000 + paddr, Paddr: paddr,
		Filesz: uint64(len(data)), Memsz: uint64(len(data)), Align: 0x1000}
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, p)
	b.Write(data)
	return bytes.NewReader(b.Bytes())
}

// TestUEFIInitrdRange: the two places an arm64 kernel booted by UEFI with
// ACPI shows its initramfs — GRUB's flattened tree (/sys/firmware/fdt) and
// the EFI stub's LoadFile2 table named in the boot log (a unified kernel
// image). The log line is QEMU virt + EDK2's, as Debian's 6.1 prints it.
func TestUEFIInitrdRange(t *testing.T) {
	dir := t.TempDir()
	writeFDT := func(name string, props ...dt.Property) string {
		tree := &dt.FDT{Header: dt.Header{Magic: dt.Magic, Version: 17, LastCompVersion: 16},
			RootNode: dt.NewNode("", dt.WithChildren(dt.NewNode("chosen", dt.WithProperty(props...))))}
		var b bytes.Buffer
		if _, err := tree.Write(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o444); err != nil {
			t.Fatal(err)
		}
		return p
	}
	grub := writeFDT("grub", dt.PropertyString("bootargs", "BOOT_IMAGE=(http,10.0.0.1)/vmlinuz"),
		dt.PropertyU64("linux,initrd-start", 0x7c00_b000), dt.PropertyU64("linux,initrd-end", 0x7c2d_4c68))
	if s, n, err := fdtInitrdRange(grub); err != nil || s != 0x7c00_b000 || n != 0x2c9c68 {
		t.Errorf("GRUB's tree: %#x+%d, %v", s, n, err)
	}
	stub := writeFDT("stub", dt.PropertyString("bootargs", "console=ttyAMA0"))
	if _, _, err := fdtInitrdRange(stub); err == nil || !strings.Contains(err.Error(), "no linux,initrd-start") {
		t.Errorf("the stub's tree without a range: %v", err)
	}

	klog := []byte("<6>[    0.000000] efi: EFI v2.70 by EDK II\n" +
		"<6>[    0.000000] efi: SMBIOS 3.0=0x7fed0000 MEMATTR=0x7e72f018 ACPI 2.0=0x7c430018 INITRD=0x7a1ded98 MEMRESERVE=0x7a1dee18 \n")
	page := make([]byte, 0x1000)
	binary.LittleEndian.PutUint64(page[0xd98:], 0x77ee_0000)
	binary.LittleEndian.PutUint64(page[0xda0:], 2_945_128)
	kc := fakeKcore(t, 0x7a1d_e000, page)
	if s, n, err := efiInitrdTable(klog, kc); err != nil || s != 0x77ee_0000 || n != 2_945_128 {
		t.Errorf("LoadFile2 table: %#x+%d, %v", s, n, err)
	}
	for name, tc := range map[string]struct {
		log  string
		page []byte
		want string
	}{
		"no table in the log": {"<6>efi: ACPI 2.0=0x7c430018\n", page, "names no EFI initrd table"},
		"table outside RAM":   {"efi: INITRD=0x10\n", page, "no RAM segment"},
		"reused page":         {string(klog), make([]byte, 0x1000), "not an initramfs range"},
	} {
		if _, _, err := efiInitrdTable([]byte(tc.log), fakeKcore(t, 0x7a1d_e000, tc.page)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}
