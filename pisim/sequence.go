package pisim

import (
	"context"
	"fmt"
)

// Default file names of the Pi firmware.
const (
	dtbPi4     = "bcm2711-rpi-4-b.dtb"
	dtbPi5     = "bcm2712-rpi-5-b.dtb"
	kernelPi5  = "kernel_2712.img"
	kernel64   = "kernel8.img"
	kernel32Pi = "kernel7l.img"
)

// sequencePi4 plays the Pi 4 bootloader and start4.elf as observed (see
// docs/design.md): prefix check, config.txt, self-update and recovery probes,
// start4.elf, fixup4.dat, config.txt again, initramfs, device tree,
// overlays, cmdline.txt, then the kernel with a probe before the real read.
func (b *booter) sequencePi4(ctx context.Context) (string, error) {
	// The first start4.elf read is a probe; when neither start file exists
	// under the prefix, the prefix is dropped for the rest of the boot.
	ok, _, err := b.fetch(ctx, "start4.elf", probe, false)
	if err != nil {
		return "", err
	}
	if !ok {
		if ok, _, err = b.fetch(ctx, "start.elf", probe, false); err != nil {
			return "", err
		}
	}
	if !ok && b.prefix != "" {
		b.prefix, b.res.PrefixDropped = "", true
	}
	cfg, err := b.readConfig(ctx)
	if err != nil {
		return "", err
	}
	if cfg.BootRamdisk {
		return b.bootImg(ctx)
	}
	if err := b.fetchAll(ctx, optional, "vl805.sig", "pieeprom.sig", "recover4.elf", "recovery.elf"); err != nil {
		return "", err
	}
	start, fixup := orStr(cfg.StartFile, "start4.elf"), orStr(cfg.FixupFile, "fixup4.dat")
	if err := b.fetchAll(ctx, required, start, fixup); err != nil {
		return "", err
	}
	if err := b.fetchAll(ctx, optional, "recovery.elf"); err != nil {
		return "", err
	}
	// start4.elf reads config.txt (and its includes) again.
	if cfg, err = b.readConfig(ctx); err != nil {
		return "", err
	}
	if err := b.fetchAll(ctx, optional, "dt-blob.bin", "bootcfg.txt"); err != nil {
		return "", err
	}
	if cfg.Initramfs != "" {
		if err := b.fetchAll(ctx, required, cfg.Initramfs); err != nil {
			return "", err
		}
	}
	if err := b.fetchDT(ctx, cfg, dtbPi4); err != nil {
		return "", err
	}
	if err := b.fetchAll(ctx, optional, "config.txt", orStr(cfg.Cmdline, "cmdline.txt")); err != nil {
		return "", err
	}
	kernel := cfg.Kernel
	if kernel == "" {
		kernel = kernel32Pi
		if cfg.Arm64 {
			kernel = kernel64
		}
	}
	if err := b.fetchKernel(ctx, kernel); err != nil {
		return "", err
	}
	if cfg.Arm64 {
		if err := b.fetchAll(ctx, optional, "armstub8-gic.bin"); err != nil {
			return "", err
		}
	}
	return VerdictKernel, nil
}

// sequencePi5 plays the documented Pi 5 order (the order itself is not
// observed): config.txt, pieeprom.sig, cmdline.txt, device tree, kernel
// (kernel_2712.img, else kernel8.img), initramfs. The prefix is never
// dropped: the Pi 5 fallback rule is undocumented.
func (b *booter) sequencePi5(ctx context.Context) (string, error) {
	cfg, err := b.readConfig(ctx)
	if err != nil {
		return "", err
	}
	if err := b.fetchAll(ctx, optional, "pieeprom.sig"); err != nil {
		return "", err
	}
	if cfg.BootRamdisk {
		return b.bootImg(ctx)
	}
	if err := b.fetchAll(ctx, optional, orStr(cfg.Cmdline, "cmdline.txt")); err != nil {
		return "", err
	}
	if err := b.fetchDT(ctx, cfg, dtbPi5); err != nil {
		return "", err
	}
	kernel, probed := cfg.Kernel, false
	if kernel == "" {
		ok, _, err := b.fetch(ctx, kernelPi5, probe, false)
		if err != nil {
			return "", err
		}
		kernel, probed = kernelPi5, ok
		if !ok {
			kernel = kernel64
		}
	}
	if probed {
		err = b.fetchAll(ctx, required, kernel)
	} else {
		err = b.fetchKernel(ctx, kernel)
	}
	if err != nil {
		return "", err
	}
	if cfg.Initramfs != "" {
		if err := b.fetchAll(ctx, required, cfg.Initramfs); err != nil {
			return "", err
		}
	}
	return VerdictKernel, nil
}

// bootImg reads boot.sig (with SignedBoot) and boot.img: the kernel and
// everything else are inside the image.
func (b *booter) bootImg(ctx context.Context) (string, error) {
	if b.p.SignedBoot {
		if err := b.fetchAll(ctx, required, "boot.sig"); err != nil {
			return "", err
		}
	}
	if err := b.fetchAll(ctx, required, "boot.img"); err != nil {
		return "", err
	}
	return VerdictBootImg, nil
}

// fetchDT reads the device tree and the overlays config.txt names.
func (b *booter) fetchDT(ctx context.Context, cfg bootConfig, def string) error {
	if err := b.fetchAll(ctx, optional, orStr(cfg.DeviceTree, def)); err != nil {
		return err
	}
	if len(cfg.Overlays) == 0 {
		return nil
	}
	names := []string{"overlays/overlay_map.dtb"}
	for _, o := range cfg.Overlays {
		names = append(names, "overlays/"+o+".dtbo")
	}
	return b.fetchAll(ctx, optional, names...)
}

// fetchKernel probes the kernel (Early terminate after the OACK) and then
// reads it in full.
func (b *booter) fetchKernel(ctx context.Context, kernel string) error {
	ok, _, err := b.fetch(ctx, kernel, probe, false)
	if err != nil {
		return err
	}
	if !ok {
		return &fileError{b.prefix + kernel, fmt.Errorf("kernel probe: %w", ErrNotFound)}
	}
	return b.fetchAll(ctx, required, kernel)
}

// fetchAll reads names in order with the same kind.
func (b *booter) fetchAll(ctx context.Context, kind fetchKind, names ...string) error {
	for _, n := range names {
		if _, _, err := b.fetch(ctx, n, kind, false); err != nil {
			return err
		}
	}
	return nil
}

func orStr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
