package squashfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"runtime"

	"github.com/racklet/racklet-boot/image/flatten"
)

const (
	magic          = 0x73717368
	superblockSize = 96
	noTable        = ^uint64(0)
	// padTo is the alignment of the image end, as mksquashfs pads by default (and dm-verity wants).
	padTo = 4096
)

// ErrOptions means the writer options are invalid.
var ErrOptions = errors.New("invalid squashfs options")

// Options tunes Write. The zero value means zstd at its default level, 128 KiB blocks, one
// worker per CPU and a zero creation time.
type Options struct {
	// Compression is zstd (default), xz or gzip.
	Compression Compression
	// Level is the compressor level; 0 picks the compressor's default (zstd 3, gzip 9).
	Level int
	// BlockSize is the data block size, a power of two from 4 KiB to 1 MiB; default 128 KiB.
	BlockSize int
	// ModTime is the creation time stored in the superblock (Unix seconds).
	ModTime int64
	// Workers is the number of compressing goroutines; default runtime.GOMAXPROCS(0).
	Workers int
}

func (o *Options) fill() error {
	if o.Compression == "" {
		o.Compression = Zstd
	}
	if _, err := o.Compression.id(); err != nil {
		return fmt.Errorf("%w: %w", ErrOptions, err)
	}
	if o.BlockSize == 0 {
		o.BlockSize = 128 << 10
	}
	if o.BlockSize < 4096 || o.BlockSize > 1<<20 || bits.OnesCount(uint(o.BlockSize)) != 1 {
		return fmt.Errorf("%w: block size %d is not a power of two from 4096 to 1048576", ErrOptions, o.BlockSize)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return nil
}

// Stats describes a written image.
type Stats struct {
	// Size is the image length in bytes, padded to 4 KiB.
	Size   int64
	Inodes uint32
	// DataBytes is the length of the compressed data and fragment blocks.
	DataBytes int64
}

// builder holds the state of one Write.
type builder struct {
	opts      Options
	files     []*flatten.Inode
	data      map[*flatten.Inode]*fileData
	frags     []fragEntry
	fragCount int
	nums      map[*flatten.Inode]uint32
	next      uint32
	refs      map[*flatten.Inode]uint64
	written   map[*flatten.Inode]bool
	ids       []uint32
	idIndex   map[uint32]uint16
	inodes    metaWriter
	dirs      metaWriter
	xattrKV   metaWriter
	xattrIDs  []xattrID
	xattrSets map[string]uint32
}

// Write writes the tree as a squashfs image to w, which must be positioned at the image start
// (offset 0 of the seeker): the superblock is written last.
func Write(ctx context.Context, w io.WriteSeeker, t *flatten.Tree, opts Options) (Stats, error) {
	if err := opts.fill(); err != nil {
		return Stats{}, err
	}
	mc, err := newCompressor(opts.Compression, opts.Level, opts.BlockSize)
	if err != nil {
		return Stats{}, err
	}
	b := &builder{
		opts: opts, data: map[*flatten.Inode]*fileData{}, nums: map[*flatten.Inode]uint32{},
		refs: map[*flatten.Inode]uint64{}, written: map[*flatten.Inode]bool{}, idIndex: map[uint32]uint16{},
		xattrSets: map[string]uint32{},
	}
	b.inodes.comp, b.dirs.comp, b.xattrKV.comp = mc, mc, mc
	b.planFiles(t)
	if _, err := w.Write(make([]byte, superblockSize)); err != nil {
		return Stats{}, fmt.Errorf("write squashfs: %w", err)
	}
	pos, err := b.writeData(ctx, w, superblockSize)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{DataBytes: int64(pos - superblockSize)}
	b.number(t.Root)
	rootRef, err := b.writeDir(t.Root, b.next+1)
	if err != nil {
		return Stats{}, err
	}
	sb := superblock{inodes: b.next, root: rootRef, fragments: uint32(len(b.frags))}
	out := &posWriter{w: w, pos: pos}
	if err := b.writeTables(out, &sb, mc); err != nil {
		return Stats{}, err
	}
	sb.bytesUsed = out.pos
	if pad := out.pos % padTo; pad != 0 {
		out.write(make([]byte, padTo-pad))
	}
	if out.err != nil {
		return Stats{}, fmt.Errorf("write squashfs tables: %w", out.err)
	}
	st.Size, st.Inodes = int64(out.pos), b.next
	if _, err := w.Seek(0, io.SeekStart); err != nil {
		return Stats{}, fmt.Errorf("write squashfs superblock: %w", err)
	}
	if _, err := w.Write(sb.encode(opts)); err != nil {
		return Stats{}, fmt.Errorf("write squashfs superblock: %w", err)
	}
	if _, err := w.Seek(int64(st.Size), io.SeekStart); err != nil {
		return Stats{}, fmt.Errorf("write squashfs: %w", err)
	}
	return st, nil
}

// writeTables writes the metadata tables after the data and fills their offsets into sb.
func (b *builder) writeTables(out *posWriter, sb *superblock, mc compressor) error {
	inodes, err := b.inodes.finish()
	if err != nil {
		return err
	}
	dirs, err := b.dirs.finish()
	if err != nil {
		return err
	}
	sb.inodeTable = out.pos
	out.write(inodes)
	sb.dirTable = out.pos
	out.write(dirs)

	var fragMeta metaWriter
	fragMeta.comp = mc
	for _, f := range b.frags {
		fragMeta.write(le(nil).u64(f.start).u32(f.size).u32(0))
	}
	sb.fragTable, err = writeIndexed(out, &fragMeta)
	if err != nil {
		return err
	}
	var idMeta metaWriter
	idMeta.comp = mc
	for _, id := range b.ids {
		idMeta.write(le(nil).u32(id))
	}
	sb.idTable, err = writeIndexed(out, &idMeta)
	if err != nil {
		return err
	}
	sb.ids = uint16(len(b.ids))
	sb.xattrTable = noTable
	if len(b.xattrIDs) > 0 {
		kv, err := b.xattrKV.finish()
		if err != nil {
			return err
		}
		kvStart := out.pos
		out.write(kv)
		var idm metaWriter
		idm.comp = mc
		for _, x := range b.xattrIDs {
			idm.write(le(nil).u64(x.ref).u32(x.count).u32(x.size))
		}
		blocks, err := idm.finish()
		if err != nil {
			return err
		}
		idStart := out.pos
		out.write(blocks)
		sb.xattrTable = out.pos
		hdr := le(nil).u64(kvStart).u32(uint32(len(b.xattrIDs))).u32(0)
		for _, s := range idm.starts {
			hdr = hdr.u64(idStart + s)
		}
		out.write(hdr)
	}
	return nil
}

// writeIndexed writes a metadata run followed by the u64 positions of its blocks and returns
// the position of that index, which the superblock points at.
func writeIndexed(out *posWriter, m *metaWriter) (uint64, error) {
	blocks, err := m.finish()
	if err != nil {
		return 0, err
	}
	start := out.pos
	out.write(blocks)
	idx := out.pos
	var ptrs le
	for _, s := range m.starts {
		ptrs = ptrs.u64(start + s)
	}
	out.write(ptrs)
	return idx, nil
}

// posWriter tracks the offset of a writer and keeps its first error.
type posWriter struct {
	w   io.Writer
	pos uint64
	err error
}

func (p *posWriter) write(b []byte) {
	if p.err != nil {
		return
	}
	n, err := p.w.Write(b)
	p.pos += uint64(n)
	p.err = err
}

// superblock holds the fields of the squashfs superblock that vary.
type superblock struct {
	inodes, fragments                                    uint32
	ids                                                  uint16
	root, bytesUsed                                      uint64
	idTable, xattrTable, inodeTable, dirTable, fragTable uint64
}

func (s superblock) encode(o Options) []byte {
	id, _ := o.Compression.id()
	flags := uint16(0)
	if s.xattrTable == noTable {
		flags |= 0x0200 // NO_XATTRS
	}
	return le(nil).u32(magic).u32(s.inodes).u32(uint32(o.ModTime)).u32(uint32(o.BlockSize)).
		u32(s.fragments).u16(id).u16(uint16(bits.TrailingZeros(uint(o.BlockSize)))).u16(flags).
		u16(s.ids).u16(4).u16(0).u64(s.root).u64(s.bytesUsed).u64(s.idTable).u64(s.xattrTable).
		u64(s.inodeTable).u64(s.dirTable).u64(s.fragTable).u64(noTable)
}
