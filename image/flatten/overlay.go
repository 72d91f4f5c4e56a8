package flatten

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// overlayLayer marks entries of the build's own overlay: above every image layer.
const overlayLayer = 1 << 30

// AddOverlay copies the directory tree at dir over the root: the build's own files. Files keep
// their permission bits; they are owned by 0:0 and their times are clamped to the build epoch.
// Directories that exist in the image keep their metadata.
func (b *Builder) AddOverlay(ctx context.Context, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read overlay: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return fmt.Errorf("overlay path %s: %w", p, err)
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("read overlay: %w", err)
		}
		parentPath, base := filepath.Split(rel)
		parent := b.mkdirAll(strings.TrimSuffix(parentPath, "/"), overlayLayer)
		old := parent.Children[base]
		in := &Inode{Perm: uint32(fi.Mode().Perm()), ModTime: b.clamp(fi.ModTime().Unix())}
		if fi.Mode()&fs.ModeSetuid != 0 {
			in.Perm |= 0o4000
		}
		if fi.Mode()&fs.ModeSetgid != 0 {
			in.Perm |= 0o2000
		}
		if fi.Mode()&fs.ModeSticky != 0 {
			in.Perm |= 0o1000
		}
		node := &Node{Name: base, layer: overlayLayer, Inode: in}
		switch m := fi.Mode(); {
		case m.IsDir():
			if old != nil && old.Inode.Kind == Dir {
				return nil
			}
			in.Kind, node.Children = Dir, map[string]*Node{}
		case m.IsRegular():
			in.Kind = Regular
			f, err := os.Open(p)
			if err != nil {
				return fmt.Errorf("read overlay: %w", err)
			}
			err = b.spill(in, f, fi.Size(), rel)
			f.Close()
			if err != nil {
				return err
			}
		case m&fs.ModeSymlink != 0:
			in.Kind = Symlink
			if in.Target, err = os.Readlink(p); err != nil {
				return fmt.Errorf("read overlay: %w", err)
			}
		case m&fs.ModeDevice != 0:
			in.Kind = BlockDev
			if m&fs.ModeCharDevice != 0 {
				in.Kind = CharDev
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				in.Major, in.Minor = unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))
			}
		case m&fs.ModeNamedPipe != 0:
			in.Kind = FIFO
		case m&fs.ModeSocket != 0:
			in.Kind = Socket
		default:
			return fmt.Errorf("overlay %s: unsupported file type %v", rel, m.Type())
		}
		if old != nil {
			b.tree.unlink(old)
		}
		in.Links++
		parent.Children[base] = node
		return nil
	})
}

// AddFile adds a regular file of size bytes read from r at the relative path name, owned by
// 0:0 with the build epoch as its time, over whatever the image had there: the build's own
// files, like the overlay. Missing parents are made (0755).
func (b *Builder) AddFile(name string, perm uint32, r io.Reader, size int64) error {
	in := &Inode{Kind: Regular, Perm: perm & 0o7777, ModTime: b.epoch}
	if err := b.spill(in, r, size, name); err != nil {
		return err
	}
	return b.place(name, in)
}

// AddSymlink adds a symbolic link at the relative path name, as AddFile adds a file.
func (b *Builder) AddSymlink(name, target string) error {
	return b.place(name, &Inode{Kind: Symlink, Perm: 0o777, Target: target, ModTime: b.epoch})
}

func (b *Builder) place(name string, in *Inode) error {
	clean, err := CleanName(name)
	if err != nil || clean == "" {
		return fmt.Errorf("add %q to the root file system: %w", name, ErrUnsafeName)
	}
	dir, base := path.Split(clean)
	parent := b.mkdirAll(strings.TrimSuffix(dir, "/"), overlayLayer)
	if old := parent.Children[base]; old != nil {
		b.tree.unlink(old)
	}
	in.Links++
	parent.Children[base] = &Node{Name: base, layer: overlayLayer, Inode: in}
	return nil
}
