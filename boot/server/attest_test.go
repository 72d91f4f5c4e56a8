package server

import (
	"strings"
	"testing"
	"unicode"

	"github.com/racklet/racklet-boot/rack"
)

func TestPiBootFiles(t *testing.T) {
	tests := []struct {
		name, config string
		kind         rack.NodeKind
		kernel       string
		initrd       string
	}{
		{name: "pi4 defaults", config: "", kind: rack.KindRPi4, kernel: "kernel8.img"},
		{name: "pi5 defaults", config: "", kind: rack.KindRPi5, kernel: "kernel_2712.img"},
		{name: "racklet-image's config", config: "arm_64bit=1\n[all]\ninitramfs initramfs8 followkernel\n",
			kind: rack.KindRPi4, kernel: "kernel8.img", initrd: "initramfs8"},
		{name: "model sections", config: "[pi4]\nkernel=k4.img\n[pi5]\nkernel=k5.img\n[all]\ninitramfs i followkernel\n",
			kind: rack.KindRPi5, kernel: "k5.img", initrd: "i"},
		{name: "other model's section skipped", config: "[pi5]\nkernel=k5.img\ninitramfs i5\n",
			kind: rack.KindRPi4, kernel: "kernel8.img"},
		{name: "comments and spaces", config: "  kernel=vmlinuz  # ours\n#initramfs nope\ninitramfs\tx\n",
			kind: rack.KindRPi4, kernel: "vmlinuz"},
		{name: "a line longer than 64 KiB", config: "# " + strings.Repeat("x", 70<<10) + "\nkernel=after.img\n",
			kind: rack.KindRPi4, kernel: "after.img"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, i := piBootFiles([]byte(tc.config), tc.kind)
			if k != tc.kernel || i != tc.initrd {
				t.Errorf("piBootFiles = %q, %q; want %q, %q", k, i, tc.kernel, tc.initrd)
			}
		})
	}
}

// FuzzPiBootFiles: any config.txt (it comes from an image or a boot
// directory) gives names without surrounding space, an initramfs name with no
// space at all, and the same answer twice; sections of the other model never
// change a Pi 4's answer.
func FuzzPiBootFiles(f *testing.F) {
	for _, s := range []string{"", "kernel=k\ninitramfs i followkernel\n", "[pi5]\nkernel=x\n[all]\ninitramfs y\n", "[pi4]\nkernel=\n", "#\x00\r\n[all"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, config []byte) {
		for _, kind := range []rack.NodeKind{rack.KindRPi4, rack.KindRPi5} {
			k, i := piBootFiles(config, kind)
			if k != strings.TrimSpace(k) {
				t.Fatalf("kernel %q has surrounding space", k)
			}
			if strings.IndexFunc(i, unicode.IsSpace) >= 0 {
				t.Fatalf("initramfs %q has space in it", i)
			}
			if k2, i2 := piBootFiles(config, kind); k2 != k || i2 != i {
				t.Fatalf("two answers for one config: %q %q, then %q %q", k, i, k2, i2)
			}
		}
		k, i := piBootFiles(config, rack.KindRPi4)
		hidden := append([]byte("[pi5]\n"), config...)
		if strings.Contains(string(config), "[") {
			return // a section header in config may switch back to [all] or [pi4]
		}
		if k2, i2 := piBootFiles(hidden, rack.KindRPi4); k2 != "kernel8.img" || i2 != "" {
			t.Fatalf("lines under [pi5] changed a Pi 4's files: %q %q (unhidden %q %q)", k2, i2, k, i)
		}
	})
}
