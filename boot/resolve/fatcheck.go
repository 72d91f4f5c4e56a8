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
		return 0, nil
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
	return 1, nil
}

// checkBPB checks a FAT boot sector's geometry against the volume size.
func checkBPB(b []byte, volSize int64) error {
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(b[o:])) }
	bps, spc, reserved, fats := le16(11), int64(b[13]), le16(14), int64(b[16])
	rootEntries, total, perFAT := le16(17), le16(19), le16(22)
	if total == 0 {
		total = le32(32)
	}
	if perFAT == 0 {
		perFAT = le32(36) // FAT32
	}
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
