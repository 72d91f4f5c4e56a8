package squashfs

import (
	"encoding/binary"
	"sort"
	"strings"

	"github.com/racklet/racklet-boot/image/flatten"
)

// xattrPrefixes maps the name spaces squashfs stores to their type codes; others are dropped,
// as mksquashfs drops them.
var xattrPrefixes = []struct {
	prefix string
	typ    uint16
}{{"user.", 0}, {"trusted.", 1}, {"security.", 2}}

// xattrID is one entry of the xattr id table.
type xattrID struct {
	ref         uint64
	count, size uint32
}

// xattrIndex returns the xattr id of an inode's attributes (noXattr when it has none), writing
// each distinct set once.
func (b *builder) xattrIndex(in *flatten.Inode) (uint32, error) {
	if len(in.Xattrs) == 0 {
		return noXattr, nil
	}
	names := make([]string, 0, len(in.Xattrs))
	for k := range in.Xattrs {
		names = append(names, k)
	}
	sort.Strings(names)
	var rec []byte
	count := uint32(0)
	for _, k := range names {
		for _, p := range xattrPrefixes {
			if !strings.HasPrefix(k, p.prefix) || len(k) == len(p.prefix) {
				continue
			}
			short := k[len(p.prefix):]
			v := in.Xattrs[k]
			rec = binary.LittleEndian.AppendUint16(rec, p.typ)
			rec = binary.LittleEndian.AppendUint16(rec, uint16(len(short)))
			rec = append(rec, short...)
			rec = binary.LittleEndian.AppendUint32(rec, uint32(len(v)))
			rec = append(rec, v...)
			count++
			break
		}
	}
	if count == 0 {
		return noXattr, nil
	}
	key := string(rec)
	if i, ok := b.xattrSets[key]; ok {
		return i, nil
	}
	i := uint32(len(b.xattrIDs))
	b.xattrIDs = append(b.xattrIDs, xattrID{ref: b.xattrKV.ref(), count: count, size: uint32(len(rec))})
	b.xattrKV.write(rec)
	b.xattrSets[key] = i
	return i, nil
}
