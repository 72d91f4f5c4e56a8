package fat

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
)

// writeHeader writes the boot sector and FSInfo sector and their backups (sectors 6 and 7).
func writeHeader(f *os.File, g geometry, opts Options, free uint32, nextFree uint32) error {
	bs := make([]byte, sectorSize)
	copy(bs, []byte{0xEB, 0x58, 0x90})
	copy(bs[3:], "RACKLET ")
	le := binary.LittleEndian
	le.PutUint16(bs[0x0B:], sectorSize)
	bs[0x0D] = byte(g.spc)
	le.PutUint16(bs[0x0E:], reservedSectors)
	bs[0x10] = 2 // FATs
	bs[0x15] = 0xF8
	le.PutUint16(bs[0x18:], 32) // sectors per track
	le.PutUint16(bs[0x1A:], 64) // heads
	le.PutUint32(bs[0x20:], uint32(g.total))
	le.PutUint32(bs[0x24:], uint32(g.spf))
	le.PutUint32(bs[0x2C:], rootCluster)
	le.PutUint16(bs[0x30:], fsInfoSector)
	le.PutUint16(bs[0x32:], backupBootSector)
	bs[0x40] = 0x80
	bs[0x42] = 0x29
	le.PutUint32(bs[volumeIDOffset:], opts.Serial)
	copy(bs[0x47:], fmt.Sprintf("%-11s", strings.ToUpper(opts.Label)))
	copy(bs[0x52:], "FAT32   ")
	bs[510], bs[511] = 0x55, 0xAA

	fsi := make([]byte, sectorSize)
	le.PutUint32(fsi[0:], 0x41615252)
	le.PutUint32(fsi[484:], 0x61417272)
	le.PutUint32(fsi[488:], free)
	le.PutUint32(fsi[492:], nextFree)
	le.PutUint32(fsi[508:], 0xAA550000)
	for _, w := range []struct {
		b   []byte
		sec int64
	}{{bs, 0}, {fsi, fsInfoSector}, {bs, backupBootSector}, {fsi, backupBootSector + 1}} {
		if _, err := f.WriteAt(w.b, w.sec*sectorSize); err != nil {
			return fmt.Errorf("write boot partition header: %w", err)
		}
	}
	return nil
}
