// Package disk lays out and writes the A/B disk image of a Raspberry Pi node (MBR) and flashes
// images to block devices with read-back verification.
//
// Layout (512-byte sectors, every partition aligned to 1 MiB):
//
//	p1  boot control  FAT32 (0x0c)  autoboot.txt: [all] tryboot_a_b=1 boot_partition=2,
//	                                [tryboot] boot_partition=3
//	p2  boot A        FAT32 (0x0c)  firmware, kernel, initramfs, config.txt, cmdline.txt
//	p3  boot B        FAT32 (0x0c)  empty (zeros) or a copy of boot A
//	p4  extended      (0x0f)        holds the logical partitions, each after its own EBR
//	p5  root A        Linux (0x83)  root squashfs, then its dm-verity hash device at the
//	                                first 4 KiB boundary after it (veritysetup --hash-offset)
//	p6  root B        Linux (0x83)  empty or a copy of root A
//	p7  data          Linux (0x83)  unformatted: the node formats and grows it to the card
//
// MBR allows four primary partitions, hence the extended one. The disk ID is given by the
// caller (derive it from the build inputs) so builds are reproducible.
package disk

import (
	"errors"
	"fmt"
)

const (
	sector   = 512
	mib      = 1 << 20
	alignSec = mib / sector
)

// Sentinel errors.
var (
	// ErrSlotTooSmall means a boot or root image does not fit its partition.
	ErrSlotTooSmall = errors.New("image does not fit its slot")
	// ErrLayout means the sizes asked for make no valid disk.
	ErrLayout = errors.New("invalid disk layout")
)

// Sizes of the partitions in bytes, each rounded up to a MiB. Zero fields take the defaults,
// chosen for a 32 GiB card: the image itself stays near 9 GiB (sparse) and the node grows
// the data partition to the card.
type Sizes struct {
	Control int64 // default 64 MiB (the smallest FAT32 volume written)
	Boot    int64 // per slot, default 256 MiB
	Root    int64 // per slot, default 4 GiB
	Data    int64 // default 64 MiB
}

func (s Sizes) withDefaults() Sizes {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
		*v = (*v + mib - 1) / mib * mib
	}
	def(&s.Control, 64*mib)
	def(&s.Boot, 256*mib)
	def(&s.Root, 4096*mib)
	def(&s.Data, 64*mib)
	return s
}

// Partition is one partition of the layout.
type Partition struct {
	// Number as Linux and the Pi bootloader count: 1-4 primary, 5+ logical.
	Number int
	Name   string
	Type   byte
	// Start and Size in sectors.
	Start, Size int64
}

// Layout is the computed partition table of an A/B disk.
type Layout struct {
	Partitions []Partition
	// Extended is the extended partition (number 4).
	Extended Partition
	// Total is the disk size in bytes.
	Total int64
}

// Part returns the partition with the given number.
func (l Layout) Part(n int) Partition {
	for _, p := range l.Partitions {
		if p.Number == n {
			return p
		}
	}
	return Partition{}
}

// Plan computes the layout for sizes.
func Plan(s Sizes) (Layout, error) {
	s = s.withDefaults()
	for _, v := range []int64{s.Control, s.Boot, s.Root, s.Data} {
		if v <= 0 {
			return Layout{}, fmt.Errorf("%w: partition size %d", ErrLayout, v)
		}
	}
	var l Layout
	at := int64(alignSec)
	add := func(n int, name string, typ byte, size int64) {
		l.Partitions = append(l.Partitions, Partition{Number: n, Name: name, Type: typ, Start: at, Size: size / sector})
		at += size / sector
	}
	add(1, "boot-control", 0x0c, s.Control)
	add(2, "boot-a", 0x0c, s.Boot)
	add(3, "boot-b", 0x0c, s.Boot)
	extStart := at
	for i, p := range []struct {
		name string
		size int64
	}{{"root-a", s.Root}, {"root-b", s.Root}, {"data", s.Data}} {
		at += alignSec // the EBR and alignment gap before each logical partition
		add(5+i, p.name, 0x83, p.size)
	}
	l.Extended = Partition{Number: 4, Name: "extended", Type: 0x0f, Start: extStart, Size: at - extStart}
	l.Total = at * sector
	if at > 0xFFFFFFFF {
		return Layout{}, fmt.Errorf("%w: %d bytes is beyond what MBR addresses", ErrLayout, l.Total)
	}
	return l, nil
}
