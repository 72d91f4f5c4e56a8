package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
)

// The bbolt file format (go.etcd.io/bbolt v1.4, format version 2), read here
// without bbolt so that a damaged file is inspected with bounds checks
// instead of bbolt's unchecked pointer arithmetic over its memory map, where
// a garbled page panics, faults or recurses forever. Every page is
// pageSize bytes (plus overflow pages); page n starts at n*pageSize.
//
//	page header  id u64 | flags u16 | count u16 | overflow u32        (16 bytes)
//	meta         magic u32 | version u32 | pageSize u32 | flags u32 |
//	             root bucket {root u64, sequence u64} | freelist u64 |
//	             pgid (high water mark) u64 | txid u64 | checksum u64  (FNV-64a of the bytes before it)
//	branch elem  pos u32 | ksize u32 | pgid u64                        (key at elem + pos)
//	leaf elem    flags u32 | pos u32 | ksize u32 | vsize u32           (key at elem + pos, value after it)
//	bucket value root u64 | sequence u64, then an inline leaf page when root is 0
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	pageHeaderSize   = 16
	elemSize         = 16
	metaSize         = 64
	bucketHeaderSize = 16
	flagBranch       = 0x01
	flagLeaf         = 0x02
	flagMeta         = 0x04
	flagFreelist     = 0x10
	leafBucket       = 0x01
	noFreelist       = ^uint64(0)
	maxDepth         = 64 // a B+tree of this file's size is a few levels deep
)

// meta is one decoded meta page.
type meta struct {
	pageSize uint32
	root     uint64
	rootSeq  uint64
	freelist uint64
	hwm      uint64 // pages below it are in use or free
	txid     uint64
}

// decodeMeta decodes the meta in the page at off; an error says why it is
// not valid (bbolt's own checks: magic, version, checksum).
func decodeMeta(data []byte, off int) (meta, error) {
	if off < 0 || off+pageHeaderSize+metaSize > len(data) {
		return meta{}, fmt.Errorf("meta page at byte %d is past the end of the file", off)
	}
	b := data[off+pageHeaderSize : off+pageHeaderSize+metaSize]
	le := binary.LittleEndian
	switch {
	case le.Uint32(b[0:]) != boltMagic:
		return meta{}, fmt.Errorf("meta page at byte %d: not a bbolt meta page (magic %#x)", off, le.Uint32(b[0:]))
	case le.Uint32(b[4:]) != boltVersion:
		return meta{}, fmt.Errorf("meta page at byte %d: format version %d, want %d", off, le.Uint32(b[4:]), boltVersion)
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != le.Uint64(b[56:]) {
		return meta{}, fmt.Errorf("meta page at byte %d: checksum mismatch", off)
	}
	return meta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), rootSeq: le.Uint64(b[24:]),
		freelist: le.Uint64(b[32:]), hwm: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}, nil
}

// metas finds the page size and the two meta pages the way bbolt does and
// returns the valid metas, newest transaction first.
func metas(data []byte) (pageSize int, valid []meta, problems []string) {
	m0, err0 := decodeMeta(data, 0)
	if err0 == nil {
		pageSize = int(m0.pageSize)
	} else {
		problems = append(problems, "meta page 0: "+err0.Error())
		pageSize = os.Getpagesize()
		for i := range 15 { // bbolt looks for meta page 1 at 1 KiB .. 16 MiB
			pos := 1024 << i
			if pos >= len(data)-1024 {
				break
			}
			if m, err := decodeMeta(data, pos); err == nil {
				pageSize = int(m.pageSize)
				break
			}
		}
	}
	if pageSize < 1024 || pageSize > 1<<24 || pageSize&(pageSize-1) != 0 {
		return 0, nil, append(problems, fmt.Sprintf("page size %d is not a power of two between 1 KiB and 16 MiB", pageSize))
	}
	if len(data) < 2*pageSize {
		return 0, nil, append(problems, fmt.Sprintf("file of %d bytes is shorter than two %d-byte pages", len(data), pageSize))
	}
	m1, err1 := decodeMeta(data, pageSize)
	if err1 != nil {
		problems = append(problems, "meta page 1: "+err1.Error())
	}
	if err0 == nil && int(m0.pageSize) == pageSize {
		valid = append(valid, m0)
	}
	if err1 == nil && int(m1.pageSize) == pageSize {
		valid = append(valid, m1)
	}
	if len(valid) == 2 && valid[1].txid > valid[0].txid {
		valid[0], valid[1] = valid[1], valid[0]
	}
	if len(valid) == 0 {
		problems = append(problems, "no valid meta page")
	}
	return pageSize, valid, problems
}

// record is one key/value pair found in a bucket (path: the bucket names
// from the root).
type record struct {
	path [][]byte
	key  []byte
	val  []byte
}

// bucketSeq is a (nested) bucket found and its sequence counter.
type bucketSeq struct {
	path [][]byte
	seq  uint64
}

// walker reads the B+tree of one meta page. Every offset is bounds-checked,
// every page is visited at most once (a page reached twice, which includes
// any cycle, is a problem and not followed), and nesting is bounded.
type walker struct {
	data     []byte
	psize    int
	hwm      uint64
	seen     map[uint64]bool
	problems []string
	records  []record
	buckets  []bucketSeq
	validate bool // only look for problems: keep no records
}

func (w *walker) problem(format string, args ...any) {
	if len(w.problems) < 100 {
		w.problems = append(w.problems, fmt.Sprintf(format, args...))
	}
}

// walkTree walks the tree m names, then its freelist.
func (w *walker) walkTree(m meta) {
	w.hwm = m.hwm
	if max := uint64(len(w.data) / w.psize); m.hwm > max || m.hwm < 2 {
		w.problem("the meta page names %d pages, the file holds %d", m.hwm, max)
		if m.hwm > max {
			w.hwm = max
		}
	}
	w.seen = map[uint64]bool{0: true, 1: true}
	w.walkPage(nil, m.root, 0)
	if m.freelist == noFreelist {
		return
	}
	if !w.claim(m.freelist, "the freelist") {
		return
	}
	p, span, ok := w.page(m.freelist, "the freelist")
	if !ok {
		return
	}
	if flags := binary.LittleEndian.Uint16(p[8:]); flags != flagFreelist {
		w.problem("freelist page %d has page type %#x", m.freelist, flags)
		return
	}
	start, count := pageHeaderSize, uint64(binary.LittleEndian.Uint16(p[10:]))
	if count == 0xFFFF {
		if len(span) < pageHeaderSize+8 {
			w.problem("freelist page %d is truncated", m.freelist)
			return
		}
		count, start = binary.LittleEndian.Uint64(span[pageHeaderSize:]), pageHeaderSize+8
	}
	if count > uint64(len(span)-start)/8 {
		w.problem("freelist page %d lists %d pages, it has room for %d", m.freelist, count, (len(span)-start)/8)
		return
	}
	free := map[uint64]bool{}
	for i := range count {
		id := binary.LittleEndian.Uint64(span[start+int(i)*8:])
		switch {
		case id < 2 || id >= w.hwm:
			w.problem("freelist page %d lists page %d, outside 2..%d", m.freelist, id, w.hwm-1)
		case free[id]:
			w.problem("freelist page %d lists page %d twice", m.freelist, id)
		case w.seen[id]:
			w.problem("page %d is both in use and listed as free", id)
		}
		free[id] = true
	}
}

// claim marks a page used, reporting one reached twice or out of range.
func (w *walker) claim(id uint64, what string) bool {
	if id < 2 || id >= w.hwm {
		w.problem("%s names page %d, outside 2..%d", what, id, w.hwm-1)
		return false
	}
	if w.seen[id] {
		w.problem("%s names page %d, which is reached twice", what, id)
		return false
	}
	w.seen[id] = true
	return true
}

// page returns the header and the whole span (with overflow pages) of page id.
func (w *walker) page(id uint64, what string) (hdr, span []byte, ok bool) {
	off := int(id) * w.psize
	hdr = w.data[off : off+pageHeaderSize]
	if got := binary.LittleEndian.Uint64(hdr); got != id {
		// bbolt asserts on this; the rest of the page may still be
		// readable, so the walk (and a repair) goes on.
		w.problem("page %d (%s) calls itself page %d", id, what, got)
	}
	over := uint64(binary.LittleEndian.Uint32(hdr[12:]))
	if id+over >= w.hwm {
		w.problem("page %d (%s) runs %d pages past the end of the data", id, what, id+over-w.hwm+1)
		return nil, nil, false
	}
	for o := id + 1; o <= id+over; o++ {
		if !w.claim(o, fmt.Sprintf("overflow of page %d", id)) {
			return nil, nil, false
		}
	}
	return hdr, w.data[off : off+int(over+1)*w.psize], true
}

// walkPage walks the bucket tree rooted at page id (path: its bucket).
func (w *walker) walkPage(path [][]byte, id uint64, depth int) {
	if depth > maxDepth {
		w.problem("page %d is nested %d levels deep", id, depth)
		return
	}
	what := "a bucket"
	if len(w.problems) > 0 || !w.validate {
		what = "bucket " + pathString(path)
	}
	if !w.claim(id, what) {
		return
	}
	hdr, span, ok := w.page(id, what)
	if !ok {
		return
	}
	switch flags := binary.LittleEndian.Uint16(hdr[8:]); flags {
	case flagLeaf:
		w.walkLeaf(path, span, fmt.Sprintf("page %d", id), depth)
	case flagBranch:
		count := int(binary.LittleEndian.Uint16(hdr[10:]))
		if count == 0 || pageHeaderSize+count*elemSize > len(span) {
			w.problem("branch page %d has %d elements for %d bytes", id, count, len(span))
			return
		}
		var prev []byte
		for i := range count {
			e := pageHeaderSize + i*elemSize
			pos, ks := binary.LittleEndian.Uint32(span[e:]), binary.LittleEndian.Uint32(span[e+4:])
			child := binary.LittleEndian.Uint64(span[e+8:])
			k, ok := slice(span, e, pos, ks)
			if !ok {
				w.problem("branch page %d element %d points outside the page", id, i)
				return
			}
			if i > 0 && bytes.Compare(prev, k) >= 0 {
				w.problem("branch page %d keys are out of order at element %d", id, i)
				return
			}
			prev = k
			w.walkPage(path, child, depth+1)
		}
	default:
		w.problem("page %d of %s has page type %#x, want a branch or leaf page", id, what, flags)
	}
}

// walkLeaf reads the elements of a leaf page (span starts at its header).
func (w *walker) walkLeaf(path [][]byte, span []byte, where string, depth int) {
	count := int(binary.LittleEndian.Uint16(span[10:]))
	if pageHeaderSize+count*elemSize > len(span) {
		w.problem("leaf %s has %d elements for %d bytes", where, count, len(span))
		return
	}
	var prev []byte
	for i := range count {
		e := pageHeaderSize + i*elemSize
		flags := binary.LittleEndian.Uint32(span[e:])
		pos, ks, vs := binary.LittleEndian.Uint32(span[e+4:]), binary.LittleEndian.Uint32(span[e+8:]), binary.LittleEndian.Uint32(span[e+12:])
		kv, ok := slice(span, e, pos, ks+vs)
		if !ok || uint64(ks)+uint64(vs) > uint64(len(span)) || flags > leafBucket {
			w.problem("leaf %s element %d is garbled", where, i)
			continue
		}
		k, v := kv[:ks], kv[ks:]
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			w.problem("leaf %s keys are out of order at element %d", where, i)
			return
		}
		prev = k
		if flags != leafBucket {
			if !w.validate {
				w.records = append(w.records, record{path: path, key: k, val: v})
			}
			continue
		}
		sub := append(append([][]byte(nil), path...), k)
		if len(v) < bucketHeaderSize {
			w.problem("bucket %s: header of %d bytes", pathString(sub), len(v))
			continue
		}
		w.buckets = append(w.buckets, bucketSeq{path: sub, seq: binary.LittleEndian.Uint64(v[8:])})
		root := binary.LittleEndian.Uint64(v)
		if root != 0 {
			w.walkPage(sub, root, depth+1)
			continue
		}
		inline := v[bucketHeaderSize:]
		if len(inline) < pageHeaderSize || binary.LittleEndian.Uint16(inline[8:]) != flagLeaf {
			w.problem("inline bucket %s is not a leaf page", pathString(sub))
			continue
		}
		if depth+1 > maxDepth {
			w.problem("bucket %s is nested too deep", pathString(sub))
			continue
		}
		w.walkLeaf(sub, inline, "of inline bucket "+pathString(sub), depth+1)
	}
}

// slice returns n bytes at element offset e + pos of b, if they are inside b.
func slice(b []byte, e int, pos, n uint32) ([]byte, bool) {
	from := uint64(e) + uint64(pos)
	to := from + uint64(n)
	if to > uint64(len(b)) {
		return nil, false
	}
	return b[from:to], true
}

func pathString(path [][]byte) string {
	if len(path) == 0 {
		return "(root)"
	}
	var s []byte
	for i, p := range path {
		if i > 0 {
			s = append(s, '/')
		}
		s = fmt.Appendf(s, "%q", p)
	}
	return string(s)
}

// inspect checks the file bytes as bbolt would read them: the meta page
// bbolt picks and everything it reaches. It returns what it found from that
// meta, the problems (damage bbolt would trip over or records it would
// lose) and notes (damage bbolt recovers from by itself: a torn meta page,
// the other one being valid).
func inspect(data []byte) (w *walker, valid []meta, problems, notes []string) {
	psize, valid, metaProblems := metas(data)
	if len(valid) == 0 {
		return &walker{}, nil, metaProblems, nil
	}
	w = &walker{data: data, psize: psize}
	w.walkTree(valid[0])
	return w, valid, w.problems, metaProblems
}

// validate is inspect for OpenBolt: the problems only, no records kept. A
// damaged file is inspected again in full to name the damage.
func validate(data []byte) []string {
	psize, valid, metaProblems := metas(data)
	if len(valid) == 0 {
		return metaProblems
	}
	w := &walker{data: data, psize: psize, validate: true}
	w.walkTree(valid[0])
	if len(w.problems) > 0 {
		_, _, problems, _ := inspect(data)
		return problems
	}
	return nil
}
