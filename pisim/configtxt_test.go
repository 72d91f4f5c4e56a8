package pisim

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigTxt(t *testing.T) {
	tests := map[string]struct {
		in    string
		model int
		want  bootConfig
	}{
		"empty": {"", 4, bootConfig{}},
		"raspberry pi os style": {`# comment
arm_64bit=1
dtoverlay=vc4-kms-v3d
max_framebuffers=2
initramfs initrd.img followkernel
[cm4]
otg_mode=1
[all]
dtoverlay=disable-bt,foo=bar
`, 4, bootConfig{Arm64: true, Overlays: []string{"vc4-kms-v3d", "disable-bt"}, Initramfs: "initrd.img"}},
		"model sections": {`[pi4]
kernel=k4.img
[pi5]
kernel=k5.img
[pi400]
device_tree=bcm2711-rpi-400.dtb
[pi3+]
kernel=k3.img
[all]
`, 4, bootConfig{Kernel: "k4.img", DeviceTree: "bcm2711-rpi-400.dtb"}},
		"pi 5 sees its own section": {"[pi4]\nkernel=k4.img\n[pi5]\nkernel=k5.img\n", 5, bootConfig{Kernel: "k5.img"}},
		"none and tryboot skipped":  {"[none]\nkernel=a\n[tryboot]\nkernel=b\n[all]\ncmdline=c.txt\n", 4, bootConfig{Cmdline: "c.txt"}},
		"boot ramdisk":              {"boot_ramdisk=1\n", 5, bootConfig{BootRamdisk: true}},
		"spaces and case":           {"  Kernel = my.img  \nARM_64BIT=1\n", 4, bootConfig{Kernel: "my.img", Arm64: true}},
		"start and fixup files":     {"start_file=start4x.elf\nfixup_file=fixup4x.dat\n", 4, bootConfig{StartFile: "start4x.elf", FixupFile: "fixup4x.dat"}},
		"include":                   {"include extra.txt\ninclude\tmore.txt\n", 4, bootConfig{Includes: []string{"extra.txt", "more.txt"}}},
		"malformed lines ignored":   {"initramfs\n=\nkernel\ninitramfsx a\n[unclosed\ndtoverlay=\n", 4, bootConfig{}},
		"other filters keep state":  {"[none]\n[HDMI:0]\nkernel=x\n[all]\n[gpio4=1]\nkernel=y\n", 4, bootConfig{Kernel: "y"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := parseConfigTxt([]byte(tc.in), tc.model)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpandIncludes(t *testing.T) {
	got := string(expandIncludes([]byte("a=1\ninclude x.txt\ninclude missing.txt\nb=2"), map[string][]byte{"x.txt": []byte("kernel=k.img")}))
	want := "a=1\nkernel=k.img\ninclude missing.txt\nb=2\n"
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if c := parseConfigTxt([]byte(got), 4); c.Kernel != "k.img" {
		t.Errorf("kernel from include = %q", c.Kernel)
	}
}
