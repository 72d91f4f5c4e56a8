package fat

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

const (
	reservedSectors = 32
	rootCluster     = 2
	fsInfoSector    = 1
	dirEntrySize    = 32
	eoc             = 0x0FFFFFFF
	attrDir         = 0x10
	attrArchive     = 0x20
	attrVolumeID    = 0x08
	attrLFN         = 0x0F
)

// node is a file or directory of the volume being laid out.
type node struct {
	name     string
	file     *File
	children []*node
	parent   *node
	cluster  uint32
	clusters uint32
	short    [11]byte
	entries  []byte // encoded directory content (for directories)
}

// geometry is the computed layout of a volume.
type geometry struct {
	total, spc, spf int64
	clusters        int64
}

func layout(size int64) (geometry, error) {
	g := geometry{total: size / sectorSize, spc: clusterSectors(size)}
	for g.spf = 1; ; g.spf++ {
		g.clusters = (g.total - reservedSectors - 2*g.spf) / g.spc
		if g.clusters <= 0 {
			return g, fmt.Errorf("%w: %d bytes leave no data clusters", ErrTooSmall, size)
		}
		if g.spf*(sectorSize/4) >= g.clusters+2 {
			return g, nil
		}
	}
}

func (g geometry) clusterBytes() int64 { return g.spc * sectorSize }

func (g geometry) clusterOffset(c uint32) int64 {
	return (reservedSectors+2*g.spf)*sectorSize + int64(c-2)*g.clusterBytes()
}

// Write makes the FAT32 volume at dst (created or truncated) holding files. On error nothing
// is left at dst.
func Write(ctx context.Context, dst string, files []File, opts Options) (err error) {
	if opts.Size == 0 {
		opts.Size = AutoSize(files)
	}
	if opts.Label == "" {
		opts.Label = "BOOT"
	}
	if len(opts.Label) > 11 {
		opts.Label = opts.Label[:11]
	}
	g, err := layout(opts.Size)
	if err != nil {
		return err
	}
	root, err := buildTree(files)
	if err != nil {
		return err
	}
	// Allocate: directories first (breadth-first, sorted), then file contents in path order.
	next := uint32(rootCluster)
	alloc := func(bytes int64) (uint32, uint32) {
		n := uint32((bytes + g.clusterBytes() - 1) / g.clusterBytes())
		if n == 0 {
			return 0, 0
		}
		first := next
		next += n
		return first, n
	}
	dirs := []*node{root}
	for i := 0; i < len(dirs); i++ {
		d := dirs[i]
		d.entries = encodeDir(d, opts)
		d.cluster, d.clusters = alloc(int64(len(d.entries)))
		for _, c := range d.children {
			if c.file == nil {
				dirs = append(dirs, c)
			}
		}
	}
	var regular []*node
	walkFiles(root, func(n *node) { regular = append(regular, n) })
	for _, n := range regular {
		n.cluster, n.clusters = alloc(n.file.Size)
	}
	if int64(next-2) > g.clusters {
		return fmt.Errorf("%w: %d clusters needed, %d available in %d bytes", ErrTooSmall, next-2, g.clusters, opts.Size)
	}
	// Directory contents name their children's clusters: encode again now that they are known.
	for _, d := range dirs {
		d.entries = encodeDir(d, opts)
	}

	f, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create boot partition: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write boot partition: %w", cerr)
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	if err := f.Truncate(g.total * sectorSize); err != nil {
		return fmt.Errorf("size boot partition: %w", err)
	}
	if err := writeHeader(f, g, opts, uint32(g.clusters)-(next-2), next); err != nil {
		return err
	}
	table := make([]byte, g.spf*sectorSize)
	putFAT(table, 0, 0x0FFFFFF8)
	putFAT(table, 1, eoc)
	for _, d := range dirs {
		chain(table, d.cluster, d.clusters)
		if _, err := f.WriteAt(d.entries, g.clusterOffset(d.cluster)); err != nil {
			return fmt.Errorf("write boot partition directory: %w", err)
		}
	}
	for _, n := range regular {
		if err := ctx.Err(); err != nil {
			return err
		}
		chain(table, n.cluster, n.clusters)
		if n.clusters > 0 {
			if err := copyAt(f, g.clusterOffset(n.cluster), n.file); err != nil {
				return err
			}
		}
	}
	for i := range int64(2) {
		if _, err := f.WriteAt(table, (reservedSectors+i*g.spf)*sectorSize); err != nil {
			return fmt.Errorf("write boot partition FAT: %w", err)
		}
	}
	return nil
}

func putFAT(table []byte, c uint32, v uint32) {
	o := 4 * c
	table[o], table[o+1], table[o+2], table[o+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func chain(table []byte, first, n uint32) {
	for i := uint32(0); i < n; i++ {
		v := uint32(eoc)
		if i+1 < n {
			v = first + i + 1
		}
		putFAT(table, first+i, v)
	}
}

func copyAt(f *os.File, off int64, bf *File) error {
	src, err := bf.Open()
	if err != nil {
		return fmt.Errorf("boot partition: open %s: %w", bf.Path, err)
	}
	defer src.Close()
	n, err := io.Copy(io.NewOffsetWriter(f, off), io.LimitReader(src, bf.Size+1))
	if err != nil {
		return fmt.Errorf("boot partition: write %s: %w", bf.Path, err)
	}
	if n != bf.Size {
		return fmt.Errorf("boot partition: %s has %d bytes, expected %d", bf.Path, n, bf.Size)
	}
	return nil
}

// buildTree turns the flat file list into sorted directories, refusing duplicates and clashes.
func buildTree(files []File) (*node, error) {
	root := &node{}
	for i := range files {
		f := &files[i]
		p := strings.Trim(path.Clean("/"+f.Path), "/")
		if p == "" {
			return nil, fmt.Errorf("boot file %q has an empty path", f.Path)
		}
		dir := root
		parts := strings.Split(p, "/")
		for _, part := range parts[:len(parts)-1] {
			var sub *node
			for _, c := range dir.children {
				if strings.EqualFold(c.name, part) {
					sub = c
				}
			}
			if sub == nil {
				sub = &node{name: part, parent: dir}
				dir.children = append(dir.children, sub)
			} else if sub.file != nil {
				return nil, fmt.Errorf("boot file %s is also a directory", sub.name)
			}
			dir = sub
		}
		base := parts[len(parts)-1]
		for _, c := range dir.children {
			if strings.EqualFold(c.name, base) {
				return nil, fmt.Errorf("boot files clash on %s (FAT names ignore case)", p)
			}
		}
		dir.children = append(dir.children, &node{name: base, file: f, parent: dir})
	}
	sortTree(root)
	return root, nil
}

func sortTree(n *node) {
	sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
	for _, c := range n.children {
		sortTree(c)
	}
}

func walkFiles(n *node, fn func(*node)) {
	for _, c := range n.children {
		if c.file != nil {
			fn(c)
		} else {
			walkFiles(c, fn)
		}
	}
}
