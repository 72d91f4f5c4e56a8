package flatten

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrBadLayer means a layer's tar stream cannot be applied (bad hard link, unknown entry type).
var ErrBadLayer = errors.New("bad layer content")

// ErrTooLarge means the layers go past a limit of Options: a file, all files
// together, or the number of entries. A tar entry can claim terabytes in a
// few bytes (a GNU sparse file) and a gzip layer can expand a thousand
// times: limits are checked on each header, before anything is written.
var ErrTooLarge = errors.New("base image exceeds the build's size limits")

// Bounds on one entry's metadata, as Linux has them.
const (
	maxNameLen   = 4096      // PATH_MAX
	maxPartLen   = 255       // NAME_MAX
	maxXattrSize = 64 << 10  // XATTR_LIST_MAX-ish: all of one file's xattrs
	spillChunk   = 256 << 10 // spill copies in chunks, leaving all-zero ones as holes
)

// xattrPAXPrefix prefixes extended attributes in PAX records, as GNU tar and buildkit write them.
const xattrPAXPrefix = "SCHILY.xattr."

// Options tunes a new Tree.
type Options struct {
	// TempDir is where the spill directory is created; default os.TempDir().
	TempDir string
	// Epoch clamps every modification time to at most this Unix time (SOURCE_DATE_EPOCH
	// semantics); 0 keeps the times of the layers.
	Epoch int64
	// MaxFileSize refuses regular files larger than this many bytes (a GNU sparse entry can
	// claim terabytes in a few bytes of tar); 0 means no limit.
	MaxFileSize int64
	// MaxTotalSize refuses layers whose regular files add up to more than this many bytes,
	// counting every file as it is applied (also files a later layer deletes: they were
	// spilled); 0 means no limit.
	MaxTotalSize int64
	// MaxEntries refuses layers with more entries than this in all (each costs memory in
	// the tree); 0 means no limit.
	MaxEntries int
}

// Builder applies layers to a Tree.
type Builder struct {
	tree     *Tree
	epoch    int64
	maxFile  int64
	maxTotal int64
	maxEnt   int
	total    int64 // bytes of regular files applied so far
	entries  int   // entries applied so far
}

// NewBuilder makes an empty tree (a root directory 0755 owned by 0:0) and its spill directory.
func NewBuilder(opts Options) (*Builder, error) {
	dir, err := os.MkdirTemp(opts.TempDir, "racklet-rootfs-")
	if err != nil {
		return nil, fmt.Errorf("make spill directory for the root file system: %w", err)
	}
	root := &Node{Inode: &Inode{Kind: Dir, Perm: 0o755, Links: 1, ModTime: opts.Epoch}, Children: map[string]*Node{}}
	return &Builder{tree: &Tree{Root: root, SpillDir: dir}, epoch: opts.Epoch, maxFile: opts.MaxFileSize,
		maxTotal: opts.MaxTotalSize, maxEnt: opts.MaxEntries}, nil
}

// Tree returns the tree built so far; the caller owns it (and must Close it).
func (b *Builder) Tree() *Tree { return b.tree }

func (b *Builder) clamp(t int64) int64 {
	if b.epoch > 0 && t > b.epoch {
		return b.epoch
	}
	return t
}

// ApplyLayer applies one layer tar stream on top of the tree. layer is the layer's index,
// bottom first: an opaque directory hides only entries of lower layers. The stream is read
// to its end so that a digest-checking reader sees all of it.
func (b *Builder) ApplyLayer(ctx context.Context, r io.Reader, layer int) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("layer %d: read tar: %w", layer, err)
		}
		if err := b.apply(hdr, tr, layer); err != nil {
			return fmt.Errorf("layer %d: %w", layer, err)
		}
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("layer %d: %w", layer, err)
	}
	return nil
}

func (b *Builder) apply(hdr *tar.Header, r io.Reader, layer int) error {
	if err := b.admit(hdr.Name); err != nil {
		return err
	}
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if len(hdr.Linkname) > maxNameLen {
		return fmt.Errorf("entry %.64s...: link target of %d bytes: %w", name, len(hdr.Linkname), ErrBadLayer)
	}
	xattrs := 0
	for k, v := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPAXPrefix) {
			xattrs += len(k) + len(v)
		}
	}
	if xattrs > maxXattrSize {
		return fmt.Errorf("entry %s has %d bytes of extended attributes, Linux keeps %d: %w", name, xattrs, maxXattrSize, ErrBadLayer)
	}
	dir, base := path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if base == opaqueMarker {
		parent := b.mkdirAll(dir, layer)
		for n, c := range parent.Children {
			if c.layer < layer {
				b.tree.unlink(c)
				delete(parent.Children, n)
			}
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		parent := b.tree.Lookup(dir)
		victim := strings.TrimPrefix(base, whiteoutPrefix)
		if parent != nil && parent.Inode.Kind == Dir && parent.Children[victim] != nil {
			b.tree.unlink(parent.Children[victim])
			delete(parent.Children, victim)
		}
		return nil
	}
	if name == "" {
		if hdr.Typeflag == tar.TypeDir {
			b.tree.Root.Inode = b.inode(hdr, Dir, b.tree.Root.Inode.Links)
		}
		return nil
	}
	parent := b.mkdirAll(dir, layer)
	old := parent.Children[base]
	node := &Node{Name: base, layer: layer}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if old != nil && old.Inode.Kind == Dir {
			old.Inode = b.inode(hdr, Dir, old.Inode.Links)
			old.layer = layer
			return nil
		}
		node.Inode = b.inode(hdr, Dir, 0)
		node.Children = map[string]*Node{}
	case tar.TypeLink:
		target, err := CleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link %s: %w", name, err)
		}
		tn := b.tree.Lookup(target)
		if tn == nil || tn.Inode.Kind == Dir {
			return fmt.Errorf("hard link %s points to %q, which is missing or a directory: %w", name, hdr.Linkname, ErrBadLayer)
		}
		if tn == old {
			return nil
		}
		node.Inode = tn.Inode
	case tar.TypeReg, tar.TypeRegA:
		node.Inode = b.inode(hdr, Regular, 0)
		if err := b.spill(node.Inode, r, hdr.Size, name); err != nil {
			return err
		}
	case tar.TypeSymlink:
		node.Inode = b.inode(hdr, Symlink, 0)
		node.Inode.Target = hdr.Linkname
	case tar.TypeChar:
		node.Inode = b.inode(hdr, CharDev, 0)
	case tar.TypeBlock:
		node.Inode = b.inode(hdr, BlockDev, 0)
	case tar.TypeFifo:
		node.Inode = b.inode(hdr, FIFO, 0)
	default:
		return fmt.Errorf("entry %s has unsupported tar type %q: %w", name, hdr.Typeflag, ErrBadLayer)
	}
	if old != nil {
		b.tree.unlink(old)
	}
	node.Inode.Links++
	parent.Children[base] = node
	return nil
}

// inode makes the inode of a tar header.
func (b *Builder) inode(hdr *tar.Header, kind Kind, links int) *Inode {
	in := &Inode{
		Kind:    kind,
		Perm:    uint32(hdr.Mode) & 0o7777,
		UID:     uint32(hdr.Uid),
		GID:     uint32(hdr.Gid),
		ModTime: b.clamp(hdr.ModTime.Unix()),
		Major:   uint32(hdr.Devmajor),
		Minor:   uint32(hdr.Devminor),
		Links:   links,
	}
	for k, v := range hdr.PAXRecords {
		if strings.HasPrefix(k, xattrPAXPrefix) {
			if in.Xattrs == nil {
				in.Xattrs = map[string]string{}
			}
			in.Xattrs[strings.TrimPrefix(k, xattrPAXPrefix)] = v
		}
	}
	return in
}

// admit counts one more entry and checks its name's length.
func (b *Builder) admit(name string) error {
	b.entries++
	if b.maxEnt > 0 && b.entries > b.maxEnt {
		return fmt.Errorf("more than %d entries in the layers: %w", b.maxEnt, ErrTooLarge)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("entry %.64s...: name of %d bytes: %w", name, len(name), ErrUnsafeName)
	}
	for _, part := range strings.Split(name, "/") {
		if len(part) > maxPartLen {
			return fmt.Errorf("entry %.64s...: a name component of %d bytes: %w", name, len(part), ErrUnsafeName)
		}
	}
	return nil
}

// spill copies size bytes of content into a new file of the spill directory.
// All-zero chunks are left as holes, so a sparse file stays sparse on disk.
func (b *Builder) spill(in *Inode, r io.Reader, size int64, name string) error {
	in.Size = size
	if size == 0 {
		return nil
	}
	if size < 0 || (b.maxFile > 0 && size > b.maxFile) {
		return fmt.Errorf("%s has %d bytes, over the limit of %d per file: %w", name, size, b.maxFile, ErrTooLarge)
	}
	if b.maxTotal > 0 && size > b.maxTotal-b.total {
		return fmt.Errorf("%s (%d bytes) takes the files past the limit of %d bytes in all: %w", name, size, b.maxTotal, ErrTooLarge)
	}
	b.total += size
	b.tree.spilled++
	p := filepath.Join(b.tree.SpillDir, fmt.Sprintf("%08d", b.tree.spilled))
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("spill %s: %w", name, err)
	}
	n, err := copySparse(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return fmt.Errorf("spill %s: %w", name, err)
	}
	if n != size {
		os.Remove(p)
		return fmt.Errorf("%s: read %d of %d bytes: %w", name, n, size, io.ErrUnexpectedEOF)
	}
	in.Data = p
	return nil
}

// mkdirAll returns the directory at p, making missing directories (0755, 0:0) on the way and
// replacing a non-directory in the way.
func (b *Builder) mkdirAll(p string, layer int) *Node {
	n := b.tree.Root
	for _, part := range splitPath(p) {
		c := n.Children[part]
		if c == nil || c.Inode.Kind != Dir {
			if c != nil {
				b.tree.unlink(c)
			}
			c = &Node{Name: part, layer: layer, Children: map[string]*Node{},
				Inode: &Inode{Kind: Dir, Perm: 0o755, Links: 1, ModTime: b.epoch}}
			n.Children[part] = c
		}
		n = c
	}
	return n
}

// copySparse copies r to the new file f, seeking over all-zero chunks
// instead of writing them, and returns the bytes copied.
func copySparse(f *os.File, r io.Reader) (int64, error) {
	buf := make([]byte, spillChunk)
	zero := make([]byte, spillChunk)
	var n int64
	hole := false
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if bytes.Equal(buf[:k], zero[:k]) {
				if _, serr := f.Seek(int64(k), io.SeekCurrent); serr != nil {
					return n, serr
				}
				hole = true
			} else {
				if _, werr := f.Write(buf[:k]); werr != nil {
					return n, werr
				}
				hole = false
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			if hole {
				return n, f.Truncate(n) // a trailing hole sets the length
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
