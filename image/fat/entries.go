package fat

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// encodeDir encodes the entries of a directory: "." and ".." (not in the root), the volume
// label (root only), then every child as long-name entries followed by its 8.3 alias.
func encodeDir(d *node, opts Options) []byte {
	date, tm := fatTime(opts.Epoch)
	var out []byte
	short := func(name [11]byte, attr byte, cluster uint32, size uint32) {
		e := make([]byte, dirEntrySize)
		copy(e, name[:])
		e[11] = attr
		binary.LittleEndian.PutUint16(e[14:], tm)
		binary.LittleEndian.PutUint16(e[16:], date)
		binary.LittleEndian.PutUint16(e[18:], date)
		binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
		binary.LittleEndian.PutUint16(e[22:], tm)
		binary.LittleEndian.PutUint16(e[24:], date)
		binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
		binary.LittleEndian.PutUint32(e[28:], size)
		out = append(out, e...)
	}
	if d.parent == nil {
		var label [11]byte
		copy(label[:], fmt.Sprintf("%-11s", strings.ToUpper(opts.Label)))
		short(label, attrVolumeID, 0, 0)
	} else {
		short([11]byte{'.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, attrDir, d.cluster, 0)
		parent := d.parent.cluster
		if d.parent.parent == nil {
			parent = 0 // ".." of a subdirectory of the root names cluster 0
		}
		short([11]byte{'.', '.', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}, attrDir, parent, 0)
	}
	used := map[[11]byte]bool{}
	for _, c := range d.children {
		c.short = shortName(c.name, used)
		out = append(out, longEntries(c.name, c.short)...)
		if c.file != nil {
			short(c.short, attrArchive, c.cluster, uint32(c.file.Size))
		} else {
			short(c.short, attrDir, c.cluster, 0)
		}
	}
	if len(out) == 0 {
		out = make([]byte, dirEntrySize) // an empty root still has one (end) entry
	}
	return out
}

// shortName generates a unique 8.3 alias: up to six valid characters, "~N", and up to three
// characters of the extension.
func shortName(name string, used map[[11]byte]bool) [11]byte {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		base, ext = name[:i], name[i+1:]
	}
	clean := func(s string, n int) string {
		var b strings.Builder
		for _, r := range strings.ToUpper(s) {
			if b.Len() == n {
				break
			}
			if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || strings.ContainsRune("!#$%&'()-@^_`{}~", r) {
				b.WriteRune(r)
			}
		}
		return b.String()
	}
	b, e := clean(base, 8), clean(ext, 3)
	if b == "" {
		b = "X"
	}
	for n := 1; ; n++ {
		tail := fmt.Sprintf("~%d", n)
		stem := b
		if len(stem)+len(tail) > 8 {
			stem = stem[:8-len(tail)]
		}
		var s [11]byte
		copy(s[:], fmt.Sprintf("%-8s%-3s", stem+tail, e))
		if !used[s] {
			used[s] = true
			return s
		}
	}
}

// longEntries encodes name as VFAT long-name entries, last part first.
func longEntries(name string, short [11]byte) []byte {
	var sum byte
	for _, c := range short {
		sum = (sum>>1 | sum<<7) + c
	}
	u := utf16.Encode([]rune(name))
	u = append(u, 0)
	for len(u)%13 != 0 {
		u = append(u, 0xFFFF)
	}
	parts := len(u) / 13
	var out []byte
	for i := parts; i >= 1; i-- {
		e := make([]byte, dirEntrySize)
		seq := byte(i)
		if i == parts {
			seq |= 0x40
		}
		e[0] = seq
		e[11] = attrLFN
		e[13] = sum
		chunk := u[(i-1)*13 : i*13]
		offs := []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
		for k, o := range offs {
			binary.LittleEndian.PutUint16(e[o:], chunk[k])
		}
		out = append(out, e...)
	}
	return out
}

// fatTime converts Unix seconds (UTC) to a FAT date and time, clamped to 1980..2107.
func fatTime(epoch int64) (uint16, uint16) {
	t := time.Unix(epoch, 0).UTC()
	if t.Year() < 1980 {
		t = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date := uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm := uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}
