package disk

import (
	"encoding/binary"
	"fmt"
	"io"
)

// entry encodes one 16-byte MBR/EBR partition entry; CHS fields hold the LBA-only marker.
func entry(b []byte, typ byte, start, size int64) {
	if size == 0 {
		return
	}
	copy(b[1:4], []byte{0xFE, 0xFF, 0xFF})
	b[4] = typ
	copy(b[5:8], []byte{0xFE, 0xFF, 0xFF})
	binary.LittleEndian.PutUint32(b[8:], uint32(start))
	binary.LittleEndian.PutUint32(b[12:], uint32(size))
}

// writeTables writes the MBR and the EBR chain of the logical partitions.
func writeTables(w io.WriterAt, l Layout, diskID uint32) error {
	mbr := make([]byte, sector)
	binary.LittleEndian.PutUint32(mbr[0x1B8:], diskID)
	for i, n := range []int{1, 2, 3} {
		p := l.Part(n)
		entry(mbr[0x1BE+16*i:], p.Type, p.Start, p.Size)
	}
	entry(mbr[0x1BE+16*3:], l.Extended.Type, l.Extended.Start, l.Extended.Size)
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := w.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("write MBR: %w", err)
	}
	var logical []Partition
	for _, p := range l.Partitions {
		if p.Number >= 5 {
			logical = append(logical, p)
		}
	}
	for i, p := range logical {
		ebrAt := p.Start - alignSec
		ebr := make([]byte, sector)
		entry(ebr[0x1BE:], p.Type, p.Start-ebrAt, p.Size)
		if i+1 < len(logical) {
			next := logical[i+1]
			nextEBR := next.Start - alignSec
			entry(ebr[0x1BE+16:], 0x05, nextEBR-l.Extended.Start, next.Start+next.Size-nextEBR)
		}
		ebr[510], ebr[511] = 0x55, 0xAA
		if _, err := w.WriteAt(ebr, ebrAt*sector); err != nil {
			return fmt.Errorf("write EBR of partition %d: %w", p.Number, err)
		}
	}
	return nil
}
