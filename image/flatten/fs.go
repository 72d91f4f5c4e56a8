package flatten

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"
)

// maxSymlinks bounds the symbolic links followed for one path, as the kernel does.
const maxSymlinks = 40

// FS returns the tree as a read-only fs.FS, the way a process chrooted into it sees it:
// symbolic links are followed (absolute ones from the tree's root, at most 40 per path) and
// file contents come from the spill directory. Directories list their entries; devices,
// FIFOs and sockets open but read nothing.
func (t *Tree) FS() fs.FS { return treeFS{t} }

type treeFS struct{ t *Tree }

func (f treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	n, err := f.t.resolve(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := nodeInfo{name: path.Base(name), n: n}
	if n.Inode.Kind == Dir {
		return &treeDir{info: info, entries: n.Sorted()}, nil
	}
	if n.Inode.Kind != Regular || n.Inode.Data == "" {
		return &treeFile{info: info, r: bytes.NewReader(nil)}, nil
	}
	of, err := os.Open(n.Inode.Data)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	return &treeFile{info: info, r: of, c: of}, nil
}

// resolve finds the node at name, following symbolic links in every part of it.
func (t *Tree) resolve(name string) (*Node, error) {
	parts := splitPath(name)
	if name == "." {
		parts = nil
	}
	n, up, hops := t.Root, []*Node{}, 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(up) > 0 {
				n, up = up[len(up)-1], up[:len(up)-1]
			}
			continue
		}
		if n.Inode.Kind != Dir {
			return nil, syscall.ENOTDIR
		}
		c := n.Children[part]
		if c == nil {
			return nil, fs.ErrNotExist
		}
		if c.Inode.Kind == Symlink {
			if hops++; hops > maxSymlinks {
				return nil, syscall.ELOOP
			}
			if strings.HasPrefix(c.Inode.Target, "/") {
				n, up = t.Root, up[:0]
			}
			parts = append(strings.Split(c.Inode.Target, "/"), parts...)
			continue
		}
		up = append(up, n)
		n = c
	}
	return n, nil
}

// nodeInfo is the fs.FileInfo and fs.DirEntry of a node.
type nodeInfo struct {
	name string
	n    *Node
}

func (i nodeInfo) Name() string       { return i.name }
func (i nodeInfo) Size() int64        { return i.n.Inode.Size }
func (i nodeInfo) ModTime() time.Time { return time.Unix(i.n.Inode.ModTime, 0) }
func (i nodeInfo) IsDir() bool        { return i.n.Inode.Kind == Dir }
func (i nodeInfo) Sys() any           { return i.n.Inode }
func (i nodeInfo) Type() fs.FileMode  { return i.Mode().Type() }
func (i nodeInfo) Info() (fs.FileInfo, error) {
	return i, nil
}

func (i nodeInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.n.Inode.Perm & 0o777)
	if i.n.Inode.Perm&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if i.n.Inode.Perm&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if i.n.Inode.Perm&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch i.n.Inode.Kind {
	case Dir:
		m |= fs.ModeDir
	case Symlink:
		m |= fs.ModeSymlink
	case CharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case BlockDev:
		m |= fs.ModeDevice
	case FIFO:
		m |= fs.ModeNamedPipe
	case Socket:
		m |= fs.ModeSocket
	}
	return m
}

type treeFile struct {
	info nodeInfo
	r    io.Reader
	c    io.Closer
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *treeFile) Read(b []byte) (int, error) { return f.r.Read(b) }
func (f *treeFile) Close() error {
	if f.c != nil {
		return f.c.Close()
	}
	return nil
}

type treeDir struct {
	info    nodeInfo
	entries []*Node
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: errors.New("is a directory")}
}
func (d *treeDir) Close() error { return nil }

func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if n > 0 && len(d.entries) == 0 {
		return nil, io.EOF
	}
	k := len(d.entries)
	if n > 0 && n < k {
		k = n
	}
	out := make([]fs.DirEntry, 0, k)
	for _, c := range d.entries[:k] {
		out = append(out, nodeInfo{name: c.Name, n: c})
	}
	d.entries = d.entries[k:]
	return out, nil
}
