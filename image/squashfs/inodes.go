package squashfs

import (
	"fmt"
	"math"
	"strings"

	"github.com/racklet/racklet-boot/image/flatten"
)

// Inode types of squashfs 4.0; the extended type is the basic one plus 7.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlock   = 4
	typeChar    = 5
	typeFIFO    = 6
	typeSocket  = 7
	extOffset   = 7
	noXattr     = 0xFFFFFFFF
)

func basicType(k flatten.Kind) uint16 {
	switch k {
	case flatten.Dir:
		return typeDir
	case flatten.Regular:
		return typeFile
	case flatten.Symlink:
		return typeSymlink
	case flatten.BlockDev:
		return typeBlock
	case flatten.CharDev:
		return typeChar
	case flatten.FIFO:
		return typeFIFO
	}
	return typeSocket
}

// number assigns inode numbers in the order writeDir writes inodes: children before their
// directory, a hard-linked inode once.
func (b *builder) number(n *flatten.Node) {
	for _, c := range n.Sorted() {
		if c.Inode.Kind == flatten.Dir {
			b.number(c)
		} else if b.nums[c.Inode] == 0 {
			b.next++
			b.nums[c.Inode] = b.next
		}
	}
	b.next++
	b.nums[n.Inode] = b.next
}

// dirEntry is one entry of a directory listing.
type dirEntry struct {
	name string
	ref  uint64
	num  uint32
	typ  uint16
}

// writeDir writes the inodes below n, n's listing and n's inode; it returns n's inode reference.
func (b *builder) writeDir(n *flatten.Node, parent uint32) (uint64, error) {
	var entries []dirEntry
	subdirs := 0
	for _, c := range n.Sorted() {
		var ref uint64
		switch {
		case c.Inode.Kind == flatten.Dir:
			subdirs++
			r, err := b.writeDir(c, b.nums[n.Inode])
			if err != nil {
				return 0, err
			}
			ref = r
		case b.written[c.Inode]:
			ref = b.refs[c.Inode]
		default:
			r, err := b.writeInode(c.Inode)
			if err != nil {
				return 0, err
			}
			ref = r
		}
		entries = append(entries, dirEntry{name: c.Name, ref: ref, num: b.nums[c.Inode], typ: basicType(c.Inode.Kind)})
	}
	start := b.dirs.ref()
	before := b.dirs.written
	b.writeListing(entries)
	size := uint32(b.dirs.written-before) + 3
	in := n.Inode
	ref := b.inodes.ref()
	xa, err := b.xattrIndex(in)
	if err != nil {
		return 0, err
	}
	h, err := b.header(in, typeDir, xa)
	if err != nil {
		return 0, err
	}
	links := uint32(2 + subdirs)
	blockIndex, blockOffset := uint32(start>>16), uint16(start&0xffff)
	if xa == noXattr && size <= math.MaxUint16 {
		h = h.u32(blockIndex).u32(links).u16(uint16(size)).u16(blockOffset).u32(parent)
	} else {
		h[0] = typeDir + extOffset
		h = h.u32(links).u32(size).u32(blockIndex).u32(parent).u16(0).u16(blockOffset).u32(xa)
	}
	b.inodes.write(h)
	b.written[in] = true
	b.refs[in] = ref
	return ref, nil
}

// writeListing writes directory headers and entries; a header covers up to 256 entries whose
// inodes share one metadata block and lie within ±32767 inode numbers.
func (b *builder) writeListing(entries []dirEntry) {
	for i := 0; i < len(entries); {
		base := entries[i]
		j := i
		for j < len(entries) && j-i < 256 && entries[j].ref>>16 == base.ref>>16 &&
			int64(entries[j].num)-int64(base.num) <= math.MaxInt16 && int64(entries[j].num)-int64(base.num) >= math.MinInt16 {
			j++
		}
		rec := le(nil).u32(uint32(j - i - 1)).u32(uint32(base.ref >> 16)).u32(base.num)
		for _, e := range entries[i:j] {
			rec = rec.u16(uint16(e.ref & 0xffff)).u16(uint16(int16(int64(e.num) - int64(base.num)))).u16(e.typ).u16(uint16(len(e.name) - 1))
			rec = append(rec, e.name...)
		}
		b.dirs.write(rec)
		i = j
	}
}

// header starts an inode record: type, permissions, uid and gid indexes, mtime, number.
func (b *builder) header(in *flatten.Inode, typ uint16, xa uint32) (le, error) {
	if xa != noXattr {
		typ += extOffset
	}
	mtime := in.ModTime
	if mtime < 0 {
		mtime = 0
	}
	if mtime > math.MaxUint32 {
		mtime = math.MaxUint32
	}
	return le(nil).u16(typ).u16(uint16(in.Perm & 0o7777)).u16(b.id(in.UID)).u16(b.id(in.GID)).
		u32(uint32(mtime)).u32(b.nums[in]), nil
}

// writeInode writes the inode of a non-directory and returns its reference.
func (b *builder) writeInode(in *flatten.Inode) (uint64, error) {
	ref := b.inodes.ref()
	xa, err := b.xattrIndex(in)
	if err != nil {
		return 0, err
	}
	typ := basicType(in.Kind)
	h, err := b.header(in, typ, xa)
	if err != nil {
		return 0, err
	}
	ext := xa != noXattr
	switch in.Kind {
	case flatten.Regular:
		fd := b.data[in]
		if !ext && in.Links == 1 && fd.blocksStart <= math.MaxUint32 && in.Size <= math.MaxUint32 {
			h = h.u32(uint32(fd.blocksStart)).u32(fd.fragIndex).u32(fd.fragOffset).u32(uint32(in.Size))
		} else {
			h[0], h[1] = typeFile+extOffset, 0
			h = h.u64(fd.blocksStart).u64(uint64(in.Size)).u64(0).u32(uint32(in.Links)).u32(fd.fragIndex).u32(fd.fragOffset).u32(xa)
		}
		for _, s := range fd.sizes {
			h = h.u32(s)
		}
	case flatten.Symlink:
		if in.Target == "" || strings.IndexByte(in.Target, 0) >= 0 {
			return 0, fmt.Errorf("symlink with empty or NUL target %q", in.Target)
		}
		h = h.u32(uint32(in.Links)).u32(uint32(len(in.Target)))
		h = append(h, in.Target...)
		if ext {
			h = h.u32(xa)
		}
	case flatten.CharDev, flatten.BlockDev:
		h = h.u32(uint32(in.Links)).u32(encodeDev(in.Major, in.Minor))
		if ext {
			h = h.u32(xa)
		}
	default:
		h = h.u32(uint32(in.Links))
		if ext {
			h = h.u32(xa)
		}
	}
	b.inodes.write(h)
	b.written[in] = true
	b.refs[in] = ref
	return ref, nil
}

// encodeDev packs a device number as Linux new_encode_dev does.
func encodeDev(major, minor uint32) uint32 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// id returns the index of a uid or gid in the id table, adding it when new.
func (b *builder) id(v uint32) uint16 {
	if i, ok := b.idIndex[v]; ok {
		return i
	}
	i := uint16(len(b.ids))
	b.ids = append(b.ids, v)
	b.idIndex[v] = i
	return i
}
