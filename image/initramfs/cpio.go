package initramfs

import (
	"bytes"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// kind is the type of an archive entry.
type kind uint8

const (
	kindDir kind = iota + 1
	kindFile
	kindSymlink
	kindCharDev
)

// entry is one member of an Archive.
type entry struct {
	kind         kind
	perm         uint64
	size         int64
	open         func() (io.ReaderAt, error)
	target       string
	major, minor uint64
}

// Archive collects the members of a newc cpio archive and writes them reproducibly: sorted by
// path (so every directory comes before what it holds), every parent directory written as its
// own record (the kernel does not create missing parents), inode numbers counted from 1 in
// that order, owner 0:0, one modification time for all, and no device numbers of the build
// machine. The records themselves are written by u-root's pkg/cpio.
type Archive struct {
	entries map[string]entry
}

// NewArchive returns an empty archive.
func NewArchive() *Archive { return &Archive{entries: map[string]entry{}} }

// clean makes p a relative slash path, refusing "." and ".." parts.
func clean(p string) (string, error) {
	q := strings.TrimPrefix(p, "/")
	c := path.Clean(q)
	if q == "" || c != q || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("initramfs path %q is not a clean file name", p)
	}
	return c, nil
}

func (a *Archive) add(p string, e entry) error {
	c, err := clean(p)
	if err != nil {
		return err
	}
	if old, ok := a.entries[c]; ok && !(old.kind == kindDir && e.kind == kindDir) {
		return fmt.Errorf("initramfs path /%s added twice", c)
	}
	for d := path.Dir(c); d != "."; d = path.Dir(d) {
		if old, ok := a.entries[d]; ok {
			if old.kind != kindDir {
				return fmt.Errorf("initramfs path /%s: /%s is not a directory", c, d)
			}
			continue
		}
		a.entries[d] = entry{kind: kindDir, perm: 0o755}
	}
	a.entries[c] = e
	return nil
}

// Dir adds a directory (and its parents, 0755).
func (a *Archive) Dir(p string, perm uint64) error {
	return a.add(p, entry{kind: kindDir, perm: perm & 0o7777})
}

// Bytes adds a regular file with the given content.
func (a *Archive) Bytes(p string, perm uint64, b []byte) error {
	return a.File(p, perm, int64(len(b)), func() (io.ReaderAt, error) { return bytes.NewReader(b), nil })
}

// File adds a regular file of size bytes whose content open returns when the archive is
// written; a returned io.Closer is closed after the copy.
func (a *Archive) File(p string, perm uint64, size int64, open func() (io.ReaderAt, error)) error {
	if size > 1<<32-1 {
		return fmt.Errorf("initramfs file /%s has %d bytes: newc holds at most 4 GiB per file", p, size)
	}
	return a.add(p, entry{kind: kindFile, perm: perm & 0o7777, size: size, open: open})
}

// Symlink adds a symbolic link.
func (a *Archive) Symlink(p, target string) error {
	return a.add(p, entry{kind: kindSymlink, perm: 0o777, target: target})
}

// CharDev adds a character device node.
func (a *Archive) CharDev(p string, perm, major, minor uint64) error {
	return a.add(p, entry{kind: kindCharDev, perm: perm & 0o7777, major: major, minor: minor})
}

// Paths lists the archive's members in the order WriteTo writes them.
func (a *Archive) Paths() []string {
	ps := make([]string, 0, len(a.entries))
	for p := range a.entries {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// WriteTo writes the archive, ending with the trailer record, with every modification time
// set to mtime (seconds since the Unix epoch).
func (a *Archive) WriteTo(w io.Writer, mtime int64) error {
	rw := cpio.Newc.Writer(w)
	for i, p := range a.Paths() {
		e := a.entries[p]
		info := cpio.Info{Ino: uint64(i + 1), NLink: 1, MTime: uint64(mtime), Name: p}
		var rec cpio.Record
		switch e.kind {
		case kindDir:
			info.Mode, info.NLink = cpio.S_IFDIR|e.perm, 2
			rec = cpio.Record{Info: info}
		case kindFile:
			r, err := e.open()
			if err != nil {
				return fmt.Errorf("initramfs file /%s: %w", p, err)
			}
			info.Mode, info.FileSize = cpio.S_IFREG|e.perm, uint64(e.size)
			rec = cpio.Record{ReaderAt: r, Info: info}
		case kindSymlink:
			info.Mode, info.FileSize = cpio.S_IFLNK|e.perm, uint64(len(e.target))
			rec = cpio.Record{ReaderAt: strings.NewReader(e.target), Info: info}
		case kindCharDev:
			info.Mode, info.Rmajor, info.Rminor = cpio.S_IFCHR|e.perm, e.major, e.minor
			rec = cpio.Record{Info: info}
		}
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("write initramfs: /%s: %w", p, err)
		}
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	return nil
}
