package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SectorSize is the sector size of every disk this package handles.
const SectorSize = 512

// ErrTable means the disk's partition table is missing or malformed.
var ErrTable = errors.New("bad MBR partition table")

// Partition is one entry of an MBR partition table.
type Partition struct {
	Number      int   // 1-4 primary, 5+ logical, as Linux and the Pi firmware count
	Type        byte  // MBR partition type
	Start, Size int64 // in sectors
}

// Offset and Bytes give the partition's extent in bytes.
func (p Partition) Offset() int64 { return p.Start * SectorSize }

// Bytes is the partition's size in bytes.
func (p Partition) Bytes() int64 { return p.Size * SectorSize }

// Table is a disk's MBR partition table.
type Table struct {
	DiskID     uint32 // the disk signature: the SSSSSSSS of PARTUUID=SSSSSSSS-PP
	Partitions []Partition
}

// Part returns partition n.
func (t Table) Part(n int) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}

// maxLogical bounds the EBR chain, so a looping chain cannot hang the reader.
const maxLogical = 60

func isExtended(t byte) bool { return t == 0x05 || t == 0x0f || t == 0x85 }

// ReadTable reads the MBR and the EBR chain of logical partitions of a disk
// of size bytes. Every partition must lie inside the disk.
func ReadTable(r io.ReaderAt, size int64) (Table, error) {
	sec := make([]byte, SectorSize)
	read := func(lba int64) error {
		if lba < 0 || (lba+1)*SectorSize > size {
			return fmt.Errorf("%w: sector %d is outside the %d-byte disk", ErrTable, lba, size)
		}
		if _, err := r.ReadAt(sec, lba*SectorSize); err != nil {
			return fmt.Errorf("read sector %d: %w", lba, err)
		}
		if sec[510] != 0x55 || sec[511] != 0xAA {
			return fmt.Errorf("%w: sector %d has no boot signature", ErrTable, lba)
		}
		return nil
	}
	entry := func(i int) (typ byte, start, n int64) {
		e := sec[0x1BE+16*i:]
		return e[4], int64(binary.LittleEndian.Uint32(e[8:])), int64(binary.LittleEndian.Uint32(e[12:]))
	}
	if err := read(0); err != nil {
		return Table{}, err
	}
	t := Table{DiskID: binary.LittleEndian.Uint32(sec[0x1B8:])}
	inside := func(p Partition) error {
		if p.Start == 0 || p.Size == 0 || (p.Start+p.Size)*SectorSize > size {
			return fmt.Errorf("%w: partition %d (sectors %d+%d) is outside the %d-byte disk", ErrTable, p.Number, p.Start, p.Size, size)
		}
		return nil
	}
	var ext *Partition
	for i := range 4 {
		typ, start, n := entry(i)
		if typ == 0 {
			continue
		}
		p := Partition{Number: i + 1, Type: typ, Start: start, Size: n}
		if err := inside(p); err != nil {
			return Table{}, err
		}
		if isExtended(typ) {
			if ext != nil {
				return Table{}, fmt.Errorf("%w: two extended partitions", ErrTable)
			}
			ext = &p
			continue
		}
		t.Partitions = append(t.Partitions, p)
	}
	if ext == nil {
		return t, nil
	}
	ebr := ext.Start
	for num := 5; ; num++ {
		if num-5 == maxLogical {
			return Table{}, fmt.Errorf("%w: more than %d logical partitions (a loop?)", ErrTable, maxLogical)
		}
		if err := read(ebr); err != nil {
			return Table{}, err
		}
		typ, start, n := entry(0)
		p := Partition{Number: num, Type: typ, Start: ebr + start, Size: n}
		if err := inside(p); err != nil {
			return Table{}, err
		}
		if p.Start+p.Size > ext.Start+ext.Size {
			return Table{}, fmt.Errorf("%w: logical partition %d ends past its extended partition", ErrTable, num)
		}
		t.Partitions = append(t.Partitions, p)
		typ, start, _ = entry(1)
		if !isExtended(typ) || start == 0 {
			return t, nil
		}
		next := ext.Start + start
		if next <= ebr {
			return Table{}, fmt.Errorf("%w: the EBR chain goes backwards at partition %d", ErrTable, num)
		}
		ebr = next
	}
}
