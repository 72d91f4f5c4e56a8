package resolve

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// fatVolume locates the FAT volume in an image and checks its geometry
// before go-diskfs reads it: go-diskfs sizes its buffers from the boot
// sector, so a corrupt sector could make it allocate gigabytes. The volume is
// at byte 0 (a bare volume) or, failing that, MBR partition 1. It returns the
// go-diskfs partition index to read (0 or 1).
func fatVolume(img io.ReaderAt, imgSize int64) (int, error) {
	var sector [512]byte
	if _, err := img.ReadAt(sector[:], 0); err != nil {
		return 0, fmt.Errorf("read the first sector: %w", err)
	}
	bareErr := checkBPB(sector[:], imgSize)
	if bareErr == nil {
		return 0, checkChains(img, 0, sector[:])
	}
	if sector[510] != 0x55 || sector[511] != 0xaa {
		return 0, fmt.Errorf("neither a FAT volume (%v) nor an MBR disk image", bareErr)
	}
	p := sector[446:462] // partition 1
	start := int64(binary.LittleEndian.Uint32(p[8:])) * 512
	size := int64(binary.LittleEndian.Uint32(p[12:])) * 512
	if p[4] == 0 || start == 0 || size == 0 || start+size > imgSize {
		return 0, fmt.Errorf("neither a FAT volume (%v) nor an MBR disk image with a partition 1 inside it", bareErr)
	}
	if _, err := img.ReadAt(sector[:], start); err != nil {
		return 0, fmt.Errorf("read the first sector of partition 1: %w", err)
	}
	if err := checkBPB(sector[:], size); err != nil {
		return 0, fmt.Errorf("partition 1: %w", err)
	}
	if err := checkChains(img, start, sector[:]); err != nil {
		return 0, fmt.Errorf("partition 1: %w", err)
	}
	return 1, nil
}

// bpb is the geometry of a FAT volume, from its boot sector.
type bpb struct {
	bps, spc, reserved, fats, rootEntries, total, perFAT int64
	fat32                                                bool
}

func parseBPB(b []byte) bpb {
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(b[o:])) }
	g := bpb{bps: le16(11), spc: int64(b[13]), reserved: le16(14), fats: int64(b[16]),
		rootEntries: le16(17), total: le16(19), perFAT: le16(22)}
	if g.total == 0 {
		g.total = le32(32)
	}
	if g.perFAT == 0 {
		g.perFAT, g.fat32 = le32(36), true
	}
	return g
}

// clusters is the number of data clusters.
func (g bpb) clusters() int64 {
	rootSectors := (g.rootEntries*32 + g.bps - 1) / g.bps
	return (g.total - g.reserved - g.fats*g.perFAT - rootSectors) / g.spc
}

// maxFATClusters bounds the chain check's memory (one byte per cluster):
// far above any boot partition (32 Mi clusters of 4 KiB is 128 GiB).
const maxFATClusters = 32 << 20

// checkChains refuses a FAT with a cycle in any cluster chain. go-diskfs
// follows chains until an end-of-chain mark, so a cycle would make it loop
// (and grow a slice) forever. A valid FAT has no cycle at all, so the whole
// table is checked, whatever the directories say.
func checkChains(img io.ReaderAt, start int64, sector []byte) error {
	g := parseBPB(sector)
	n := g.clusters()
	if n > maxFATClusters {
		return fmt.Errorf("%d clusters: more than the %d this server checks", n, maxFATClusters)
	}
	table := make([]byte, g.perFAT*g.bps)
	if _, err := img.ReadAt(table, start+g.reserved*g.bps); err != nil {
		return fmt.Errorf("read the FAT: %w", err)
	}
	var next func(c int64) int64
	switch {
	case g.fat32:
		next = func(c int64) int64 { return int64(binary.LittleEndian.Uint32(table[4*c:]) & 0x0fffffff) }
	case n < 4085: // FAT12: 12-bit entries, two in three bytes
		next = func(c int64) int64 {
			v := int64(binary.LittleEndian.Uint16(table[c+c/2:]))
			if c&1 == 1 {
				return v >> 4
			}
			return v & 0xfff
		}
	default:
		next = func(c int64) int64 { return int64(binary.LittleEndian.Uint16(table[2*c:])) }
	}
	// Clusters are numbered 2..n+1; a short table bounds them further.
	last := n + 1
	switch {
	case g.fat32:
		last = min(last, int64(len(table))/4-1)
	case n < 4085:
		last = min(last, (int64(len(table))-2)*2/3)
	default:
		last = min(last, int64(len(table))/2-1)
	}
	last = max(last, 1)
	const (
		unseen = iota
		walking
		done
	)
	state := make([]byte, last+1)
	for c := int64(2); c <= last; c++ {
		if state[c] != unseen {
			continue
		}
		x := c
		for x >= 2 && x <= last && state[x] == unseen {
			state[x] = walking
			x = next(x)
		}
		if x >= 2 && x <= last && state[x] == walking {
			return fmt.Errorf("the cluster chain through cluster %d loops (corrupt FAT)", x)
		}
		for y := c; y >= 2 && y <= last && state[y] == walking; y = next(y) {
			state[y] = done
		}
	}
	return nil
}

// checkBPB checks a FAT boot sector's geometry against the volume size.
func checkBPB(b []byte, volSize int64) error {
	g := parseBPB(b)
	bps, spc, reserved, fats, rootEntries, total, perFAT := g.bps, g.spc, g.reserved, g.fats, g.rootEntries, g.total, g.perFAT
	switch {
	case bps != 512 && bps != 1024 && bps != 2048 && bps != 4096:
		return fmt.Errorf("bad bytes per sector %d", bps)
	case spc == 0 || spc&(spc-1) != 0:
		return fmt.Errorf("bad sectors per cluster %d", spc)
	case reserved == 0 || fats == 0 || fats > 4 || perFAT == 0 || total == 0:
		return errors.New("bad reserved sector, FAT or total sector count")
	case total*bps > volSize:
		return fmt.Errorf("boot sector claims %d bytes in a %d-byte volume", total*bps, volSize)
	case (reserved+fats*perFAT)*bps+rootEntries*32 > total*bps:
		return errors.New("FATs and root directory are larger than the volume")
	}
	return nil
}
