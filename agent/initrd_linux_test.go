//go:build linux

package agent

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
