package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	abdisk "github.com/racklet/racklet-boot/ab/disk"
	"github.com/racklet/racklet-boot/image/fat"
)

// Autoboot is the autoboot.txt of the boot control partition: boot A normally, boot B when
// the one-shot tryboot flag is set; tryboot_a_b makes each slot read its own config.txt. Package
// ab/disk renders it (and rewrites it in place when a node commits an update).
var Autoboot = func() string {
	b, _ := abdisk.Autoboot(2, 3, 0)
	return string(b)
}()

// Input names the images that go into the disk.
type Input struct {
	// Boot is the FAT32 boot partition image (boot.vfat).
	Boot string
	// Root is the root squashfs; Verity its hash device, stored right after it.
	Root, Verity string
	// CopyB fills slot B with a copy of slot A; otherwise slot B is left empty (zeros).
	CopyB bool
	// BootB is slot B's boot partition image when CopyB is set (its cmdline.txt names root
	// B); default Boot.
	BootB string
}

// Options tunes Write.
type Options struct {
	Sizes Sizes
	// DiskID is the MBR disk identifier (PARTUUID prefix).
	DiskID uint32
	// ControlSerial is the volume serial of the boot control FAT.
	ControlSerial uint32
	// Epoch is the time of the boot control files.
	Epoch int64
}

// VerityOffset is where the hash device starts in a root partition holding a squashfs of
// rootSize bytes: the next 4 KiB boundary.
func VerityOffset(rootSize int64) int64 { return (rootSize + 4095) / 4096 * 4096 }

// Write builds the disk image at dst. It writes dst+".tmp" and renames it at the end, so a
// failed build leaves nothing at dst.
func Write(ctx context.Context, dst string, in Input, opts Options) (Layout, error) {
	l, err := Plan(opts.Sizes)
	if err != nil {
		return Layout{}, err
	}
	sizeOf := func(p string) (int64, error) {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, fmt.Errorf("disk image input: %w", err)
		}
		return fi.Size(), nil
	}
	bootSize, err := sizeOf(in.Boot)
	if err != nil {
		return Layout{}, err
	}
	rootSize, err := sizeOf(in.Root)
	if err != nil {
		return Layout{}, err
	}
	veritySize, err := sizeOf(in.Verity)
	if err != nil {
		return Layout{}, err
	}
	if bootSize > l.Part(2).Size*sector {
		return Layout{}, fmt.Errorf("%w: boot partition image is %d bytes, the boot slot %d", ErrSlotTooSmall, bootSize, l.Part(2).Size*sector)
	}
	if need := VerityOffset(rootSize) + veritySize; need > l.Part(5).Size*sector {
		return Layout{}, fmt.Errorf("%w: root squashfs and verity tree need %d bytes, the root slot has %d (raise the root slot size)", ErrSlotTooSmall, need, l.Part(5).Size*sector)
	}
	tmp := dst + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return Layout{}, fmt.Errorf("create disk image: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Truncate(l.Total); err != nil {
		return Layout{}, fmt.Errorf("size disk image: %w", err)
	}
	if err := writeTables(f, l, opts.DiskID); err != nil {
		return Layout{}, err
	}
	ctl := filepath.Join(filepath.Dir(dst), ".boot-control.vfat.tmp")
	defer os.Remove(ctl)
	auto := []byte(Autoboot)
	err = fat.Write(ctx, ctl, []fat.File{{Path: "autoboot.txt", Size: int64(len(auto)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(auto)), nil }}},
		fat.Options{Size: l.Part(1).Size * sector, Label: "CONTROL", Serial: opts.ControlSerial, Epoch: opts.Epoch})
	if err != nil {
		return Layout{}, err
	}
	copies := []span{{ctl, 1, 0}, {in.Boot, 2, 0}, {in.Root, 5, 0}, {in.Verity, 5, VerityOffset(rootSize)}}
	if in.CopyB {
		bootB := in.BootB
		if bootB == "" {
			bootB = in.Boot
		}
		copies = append(copies, span{bootB, 3, 0}, span{in.Root, 6, 0}, span{in.Verity, 6, VerityOffset(rootSize)})
	}
	for _, c := range copies {
		if err := copyInto(ctx, f, c.src, l.Part(c.part).Start*sector+c.off); err != nil {
			return Layout{}, err
		}
	}
	if err := f.Sync(); err != nil {
		return Layout{}, fmt.Errorf("write disk image: %w", err)
	}
	if err := f.Close(); err != nil {
		return Layout{}, fmt.Errorf("write disk image: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Layout{}, fmt.Errorf("write disk image: %w", err)
	}
	ok = true
	return l, nil
}

// span is an input file and where it goes: a partition and an offset in it.
type span struct {
	src  string
	part int
	off  int64
}

func copyInto(ctx context.Context, f *os.File, src string, off int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("disk image input: %w", err)
	}
	defer s.Close()
	if _, err := io.Copy(io.NewOffsetWriter(f, off), s); err != nil {
		return fmt.Errorf("copy %s into the disk image: %w", filepath.Base(src), err)
	}
	return nil
}
