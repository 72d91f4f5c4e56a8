package lab

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// writeBoot writes the lab's Pi 4 and Pi 5 boot trees: firmware-shaped
// files of realistic sizes filled with deterministic bytes, a config.txt
// that loads a kernel and an initramfs, and a per-node cmdline template.
func writeBoot(dir string, kernelSize int) error {
	rng := rand.New(rand.NewPCG(42, 42))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := 0; i+8 <= n; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		return b
	}
	cmdline := "console=serial0,115200 root=/dev/ram0 racklet.node={{.Name}} racklet.server={{.ServerAddr}}\n"
	trees := map[string]map[string][]byte{
		"rpi4": {
			"start4.elf":                blob(2 << 20),
			"fixup4.dat":                blob(5 << 10),
			"config.txt":                []byte("[all]\narm_64bit=1\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\n"),
			"cmdline.txt.tmpl":          []byte(cmdline),
			"bcm2711-rpi-4-b.dtb":       blob(52 << 10),
			"overlays/vc4-kms-v3d.dtbo": blob(4 << 10),
			"kernel8.img":               blob(kernelSize),
			"initramfs8":                blob(kernelSize / 2),
		},
		"rpi5": {
			"config.txt":          []byte("[all]\nkernel=kernel_2712.img\ninitramfs initramfs_2712 followkernel\n"),
			"cmdline.txt.tmpl":    []byte(cmdline),
			"bcm2712-rpi-5-b.dtb": blob(78 << 10),
			"kernel_2712.img":     blob(kernelSize),
			"initramfs_2712":      blob(kernelSize / 2),
		},
	}
	for tree, files := range trees {
		for name, b := range files {
			p := filepath.Join(dir, "boot", tree, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return fmt.Errorf("write lab boot file: %w", err)
			}
		}
	}
	return nil
}
