// Package fat writes the boot partition of an image: a plain FAT32 file system (no partition
// table) holding the Raspberry Pi firmware, device trees, overlays, kernel, initramfs and the
// rendered config.txt and cmdline.txt. It is the boot.img a Pi fetches over the network and
// the boot partition of the A/B disk.
//
// The writer is our own: go-diskfs v1.9.4 (evaluated first) writes a FAT two entries short for
// some sizes, a wrong ".." entry in subdirectories of the root (fsck.vfat repairs both) and
// takes entry times from the process environment. Here every timestamp is the build epoch,
// the volume serial comes from the caller (derive it from the build inputs), files are laid
// out contiguously in path order, and the same files give the same bytes. Every entry has a
// long (VFAT) name and a generated 8.3 alias.
package fat

import (
	"errors"
	"io"
)

// ErrTooSmall means the files do not fit in the requested size.
var ErrTooSmall = errors.New("boot partition too small for its files")

const (
	mib = 1 << 20
	// MinSize is the smallest FAT32 volume written: 64 MiB (131072 clusters of 512 bytes,
	// comfortably above the 65525 clusters FAT32 needs).
	MinSize = 64 * mib
	// volumeIDOffset is where the FAT32 boot sector keeps the volume serial.
	volumeIDOffset = 0x43
	// backupBootSector is the sector of the boot sector copy go-diskfs writes.
	backupBootSector = 6
	sectorSize       = 512
)

// File is one file of the boot partition.
type File struct {
	// Path is slash-separated and relative ("overlays/vc4-kms-v3d.dtbo").
	Path string
	Size int64
	// Open returns the content.
	Open func() (io.ReadCloser, error)
}

// Options tunes Write.
type Options struct {
	// Size of the volume in bytes; 0 picks the content size plus a quarter plus 16 MiB,
	// at least MinSize, rounded up to a MiB.
	Size int64
	// Label is the volume label, upper-cased and cut to 11 characters; default "BOOT".
	Label string
	// Serial is the volume serial number.
	Serial uint32
	// Epoch is the time of every entry (Unix seconds).
	Epoch int64
}

// AutoSize is the volume size Write picks for files when Options.Size is 0.
func AutoSize(files []File) int64 {
	var total int64
	for _, f := range files {
		total += (f.Size + 4095) / 4096 * 4096
	}
	size := max(total+total/4+16*mib, MinSize)
	return (size + mib - 1) / mib * mib
}

// clusterSectors is the sectors per cluster for a volume size, as mkfs.fat picks them.
func clusterSectors(size int64) int64 {
	switch {
	case size <= 260*mib:
		return 1
	case size <= 8<<30:
		return 8
	case size <= 16<<30:
		return 16
	case size <= 32<<30:
		return 32
	}
	return 64
}
