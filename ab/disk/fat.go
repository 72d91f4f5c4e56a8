package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// ErrFAT means a FAT volume or a file in it is missing or malformed.
var ErrFAT = errors.New("bad FAT volume")

// fatVolume is the geometry of a FAT12/16/32 volume at an offset of a disk.
type fatVolume struct {
	r           io.ReaderAt
	off         int64 // where the volume starts in r
	cluster     int64 // bytes per cluster
	fatOff      int64 // the first FAT, from off
	rootOff     int64 // FAT12/16: the fixed root directory, from off
	rootLen     int64
	rootCluster uint32 // FAT32: the root directory's first cluster
	dataOff     int64  // cluster 2, from off
	clusters    uint32 // data clusters
	bits        int    // 12, 16 or 32
}

// openFAT reads the boot sector of the volume at off (size bytes long).
func openFAT(r io.ReaderAt, off, size int64) (*fatVolume, error) {
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("read FAT boot sector: %w", err)
	}
	u16 := func(i int) int64 { return int64(binary.LittleEndian.Uint16(b[i:])) }
	u32 := func(i int) int64 { return int64(binary.LittleEndian.Uint32(b[i:])) }
	bps, spc, reserved, nfats := u16(11), int64(b[13]), u16(14), int64(b[16])
	if b[510] != 0x55 || b[511] != 0xAA || bps < 512 || bps > 4096 || bps&(bps-1) != 0 || spc == 0 || spc&(spc-1) != 0 ||
		reserved == 0 || nfats == 0 || nfats > 4 {
		return nil, fmt.Errorf("%w: not a FAT boot sector", ErrFAT)
	}
	total, fatSize := u16(19), u16(22)
	if total == 0 {
		total = u32(32)
	}
	if fatSize == 0 {
		fatSize = u32(36)
	}
	rootSectors := (u16(17)*32 + bps - 1) / bps
	data := reserved + nfats*fatSize + rootSectors
	if fatSize == 0 || total*bps > size || data >= total {
		return nil, fmt.Errorf("%w: geometry does not fit the %d-byte partition", ErrFAT, size)
	}
	v := &fatVolume{r: r, off: off, cluster: bps * spc, fatOff: reserved * bps, rootOff: (reserved + nfats*fatSize) * bps,
		rootLen: rootSectors * bps, dataOff: data * bps, clusters: uint32((total - data) / spc)}
	switch {
	case v.clusters < 4085:
		v.bits = 12
	case v.clusters < 65525:
		v.bits = 16
	default:
		v.bits, v.rootCluster = 32, uint32(u32(44))
	}
	if need := (int64(v.clusters) + 2) * int64(v.bits) / 8; need > fatSize*bps {
		return nil, fmt.Errorf("%w: the FAT is too small for %d clusters", ErrFAT, v.clusters)
	}
	return v, nil
}

// next returns the cluster after c in its chain; end is true at the chain's end.
func (v *fatVolume) next(c uint32) (n uint32, end bool, err error) {
	var b [4]byte
	switch v.bits {
	case 12:
		if _, err := v.r.ReadAt(b[:2], v.off+v.fatOff+int64(c)+int64(c)/2); err != nil {
			return 0, false, err
		}
		n = uint32(binary.LittleEndian.Uint16(b[:]))
		if c&1 == 1 {
			n >>= 4
		}
		n &= 0xFFF
		end = n >= 0xFF8
	case 16:
		if _, err := v.r.ReadAt(b[:2], v.off+v.fatOff+int64(c)*2); err != nil {
			return 0, false, err
		}
		n = uint32(binary.LittleEndian.Uint16(b[:]))
		end = n >= 0xFFF8
	default:
		if _, err := v.r.ReadAt(b[:], v.off+v.fatOff+int64(c)*4); err != nil {
			return 0, false, err
		}
		n = binary.LittleEndian.Uint32(b[:]) & 0x0FFFFFFF
		end = n >= 0x0FFFFFF8
	}
	return n, end, nil
}

// extent is a byte range of the disk.
type extent struct{ off, n int64 }

// extents maps the first size bytes of the chain starting at first to the
// disk, refusing chains that leave the volume, loop, or end early.
func (v *fatVolume) extents(first uint32, size int64) ([]extent, error) {
	var out []extent
	c := first
	for left := size; left > 0; {
		if c < 2 || c >= v.clusters+2 || int64(len(out)) > int64(v.clusters) {
			return nil, fmt.Errorf("%w: cluster chain leaves the volume or loops", ErrFAT)
		}
		n := min(left, v.cluster)
		off := v.off + v.dataOff + int64(c-2)*v.cluster
		if k := len(out); k > 0 && out[k-1].off+out[k-1].n == off {
			out[k-1].n += n
		} else {
			out = append(out, extent{off, n})
		}
		left -= n
		if left == 0 {
			break
		}
		nc, end, err := v.next(c)
		if err != nil {
			return nil, fmt.Errorf("read FAT: %w", err)
		}
		if end {
			return nil, fmt.Errorf("%w: cluster chain ends %d bytes short", ErrFAT, left)
		}
		c = nc
	}
	return out, nil
}

// read reads the bytes of extents.
func (v *fatVolume) read(ext []extent) ([]byte, error) {
	var out []byte
	for _, e := range ext {
		b := make([]byte, e.n)
		if _, err := v.r.ReadAt(b, e.off); err != nil {
			return nil, fmt.Errorf("read FAT volume: %w", err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// maxRootDir bounds a FAT32 root directory read.
const maxRootDir = 1 << 20

// fatFile is a file found in a root directory.
type fatFile struct {
	cluster uint32
	size    int64
}

// find looks name up (case-insensitively, by its long or its 8.3 name) in
// the root directory.
func (v *fatVolume) find(name string) (fatFile, error) {
	var dir []byte
	var err error
	if v.bits == 32 {
		var ext []extent
		if ext, err = v.chainExtents(v.rootCluster, maxRootDir); err == nil {
			dir, err = v.read(ext)
		}
	} else {
		dir, err = v.read([]extent{{v.off + v.rootOff, v.rootLen}})
	}
	if err != nil {
		return fatFile{}, err
	}
	var long [20][13]uint16 // LFN parts by sequence number
	var longN int
	for i := 0; i+32 <= len(dir); i += 32 {
		e := dir[i : i+32]
		switch {
		case e[0] == 0:
			return fatFile{}, fmt.Errorf("%w: no %s in the root directory", ErrFAT, name)
		case e[0] == 0xE5:
			longN = 0
			continue
		case e[11] == 0x0F:
			seq := int(e[0] & 0x1F)
			if seq == 0 || seq > len(long) {
				longN = 0
				continue
			}
			for j, o := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
				long[seq-1][j] = binary.LittleEndian.Uint16(e[o:])
			}
			if e[0]&0x40 != 0 {
				longN = seq
			}
			continue
		}
		lfn := ""
		if longN > 0 {
			var u []uint16
			for s := range longN {
				u = append(u, long[s][:]...)
			}
			for k, c := range u {
				if c == 0 {
					u = u[:k]
					break
				}
			}
			lfn = string(utf16.Decode(u))
		}
		longN = 0
		if e[11]&0x18 != 0 { // a directory or the volume label
			continue
		}
		short := strings.TrimRight(string(e[0:8]), " ")
		if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
			short += "." + ext
		}
		if strings.EqualFold(lfn, name) || strings.EqualFold(short, name) {
			c := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
			return fatFile{cluster: c, size: int64(binary.LittleEndian.Uint32(e[28:]))}, nil
		}
	}
	return fatFile{}, fmt.Errorf("%w: no %s in the root directory", ErrFAT, name)
}

// chainExtents maps a whole chain (a directory), up to limit bytes.
func (v *fatVolume) chainExtents(first uint32, limit int64) ([]extent, error) {
	var out []extent
	c := first
	for n := int64(0); n < limit; n += v.cluster {
		if c < 2 || c >= v.clusters+2 {
			return nil, fmt.Errorf("%w: directory chain leaves the volume", ErrFAT)
		}
		out = append(out, extent{v.off + v.dataOff + int64(c-2)*v.cluster, v.cluster})
		nc, end, err := v.next(c)
		if err != nil {
			return nil, fmt.Errorf("read FAT: %w", err)
		}
		if end {
			return out, nil
		}
		c = nc
	}
	return out, nil
}

// readFAT returns the content of a root-directory file of the FAT volume at
// off (size bytes), refusing files larger than max.
func readFAT(r io.ReaderAt, off, size int64, name string, max int64) ([]byte, error) {
	v, err := openFAT(r, off, size)
	if err != nil {
		return nil, err
	}
	f, err := v.find(name)
	if err != nil {
		return nil, err
	}
	if f.size > max {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than %d", ErrFAT, name, f.size, max)
	}
	ext, err := v.extents(f.cluster, f.size)
	if err != nil {
		return nil, err
	}
	return v.read(ext)
}
