// Package flatten merges the layer tar streams of an OCI image into one root file system tree,
// applying whiteouts (.wh.NAME) and opaque directories (.wh..wh..opq) and keeping hard links,
// symlinks, device nodes, xattrs and ownership. Metadata lives in memory; file contents spill
// to files in a temporary directory so a large root file system never sits in RAM.
package flatten

import (
	"os"
	"sort"
)

// Kind is the type of a file system object.
type Kind uint8

// Kinds of file system objects.
const (
	Dir Kind = iota + 1
	Regular
	Symlink
	CharDev
	BlockDev
	FIFO
	Socket
)

// Inode is one file system object; hard links share one Inode.
type Inode struct {
	Kind Kind
	// Perm holds the permission bits including setuid, setgid and sticky (07777).
	Perm uint32
	UID  uint32
	GID  uint32
	// ModTime is the modification time in seconds since the Unix epoch, clamped to the build epoch.
	ModTime int64
	// Size is the content length of a regular file.
	Size int64
	// Data is the path of the spilled content of a regular file ("" when empty).
	Data string
	// Target is the target of a symlink.
	Target string
	// Major and Minor number a device node.
	Major, Minor uint32
	// Xattrs maps full extended attribute names ("user.x", "security.capability") to values.
	Xattrs map[string]string
	// Links counts the directory entries that name this inode.
	Links int
}

// Node is a directory entry of the tree.
type Node struct {
	Name  string
	Inode *Inode
	// Children of a directory, by name.
	Children map[string]*Node
	// layer is the index of the layer that last wrote this entry; overlay entries use -1 - n.
	layer int
}

// Tree is a flattened root file system.
type Tree struct {
	Root *Node
	// SpillDir holds the content of regular files; Close removes it.
	SpillDir string
	spilled  int
}

// Sorted returns the children of a directory sorted by name, as squashfs and FAT want them.
func (n *Node) Sorted() []*Node {
	out := make([]*Node, 0, len(n.Children))
	for _, c := range n.Children {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Lookup returns the node at a clean relative path ("" is the root), or nil.
func (t *Tree) Lookup(p string) *Node {
	n := t.Root
	if p == "" || p == "." {
		return n
	}
	for _, part := range splitPath(p) {
		if n.Inode.Kind != Dir {
			return nil
		}
		n = n.Children[part]
		if n == nil {
			return nil
		}
	}
	return n
}

// Walk calls fn for every node in depth-first order with sorted children, parents first.
// The root has the path "".
func (t *Tree) Walk(fn func(path string, n *Node) error) error {
	return walk("", t.Root, fn)
}

func walk(p string, n *Node, fn func(string, *Node) error) error {
	if err := fn(p, n); err != nil {
		return err
	}
	if n.Inode.Kind != Dir {
		return nil
	}
	for _, c := range n.Sorted() {
		cp := c.Name
		if p != "" {
			cp = p + "/" + c.Name
		}
		if err := walk(cp, c, fn); err != nil {
			return err
		}
	}
	return nil
}

// Close removes the spilled file contents.
func (t *Tree) Close() error {
	if t.SpillDir == "" {
		return nil
	}
	return os.RemoveAll(t.SpillDir)
}

// unlink drops n and, recursively, its children; spilled content goes when its last link does.
func (t *Tree) unlink(n *Node) {
	for _, c := range n.Children {
		t.unlink(c)
	}
	n.Inode.Links--
	if n.Inode.Links <= 0 && n.Inode.Data != "" {
		os.Remove(n.Inode.Data)
		n.Inode.Data = ""
	}
}
