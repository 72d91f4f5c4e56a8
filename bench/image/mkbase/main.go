// Command mkbase makes the benchmark input of bench/image/run.sh: the imagetest base image
// with SIZE bytes of extra content as an OCI layout, and the same flattened tree written to a
// directory (owners, modes, links, device nodes, xattrs and times kept; needs root) for the
// native pipeline to read.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/image/source"
)

func main() {
	layoutDir := flag.String("layout", "", "write the OCI layout here")
	treeDir := flag.String("tree", "", "also write the flattened tree here (optional)")
	size := flag.Int64("size", 1<<30, "bytes of extra content")
	flag.Parse()
	if err := run(*layoutDir, *treeDir, *size); err != nil {
		fmt.Fprintln(os.Stderr, "mkbase:", err)
		os.Exit(1)
	}
}

func run(layoutDir, treeDir string, size int64) error {
	ref, err := imagetest.WriteLayout(layoutDir, imagetest.Options{ExtraBytes: size})
	if err != nil {
		return err
	}
	fmt.Println(ref)
	if treeDir == "" {
		return nil // the layout alone: a base image for racklet-image build
	}
	ctx := context.Background()
	img, err := source.Open(ctx, ref, source.Options{})
	if err != nil {
		return err
	}
	layers, err := source.Layers(img)
	if err != nil {
		return err
	}
	b, err := flatten.NewBuilder(flatten.Options{TempDir: filepath.Dir(treeDir)})
	if err != nil {
		return err
	}
	defer b.Tree().Close()
	for _, l := range layers {
		rc, err := l.Open()
		if err != nil {
			return err
		}
		err = b.ApplyLayer(ctx, rc, l.Index)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return materialize(b.Tree(), treeDir)
}

// materialize writes the tree to dir.
func materialize(t *flatten.Tree, dir string) error {
	first := map[*flatten.Inode]string{}
	var dirs []string
	err := t.Walk(func(p string, n *flatten.Node) error {
		dst := filepath.Join(dir, p)
		in := n.Inode
		if prev, ok := first[in]; ok && in.Kind != flatten.Dir {
			return os.Link(prev, dst)
		}
		first[in] = dst
		var err error
		switch in.Kind {
		case flatten.Dir:
			err = os.MkdirAll(dst, 0o755)
			dirs = append(dirs, dst)
		case flatten.Regular:
			err = copyData(in, dst)
		case flatten.Symlink:
			err = os.Symlink(in.Target, dst)
		case flatten.CharDev:
			err = unix.Mknod(dst, unix.S_IFCHR|in.Perm, int(unix.Mkdev(in.Major, in.Minor)))
		case flatten.BlockDev:
			err = unix.Mknod(dst, unix.S_IFBLK|in.Perm, int(unix.Mkdev(in.Major, in.Minor)))
		case flatten.FIFO:
			err = unix.Mkfifo(dst, in.Perm)
		}
		if err != nil {
			return err
		}
		if err := os.Lchown(dst, int(in.UID), int(in.GID)); err != nil {
			return err
		}
		for k, v := range in.Xattrs {
			if err := unix.Lsetxattr(dst, k, []byte(v), 0); err != nil && !strings.HasPrefix(k, "trusted.") {
				return err
			}
		}
		if in.Kind != flatten.Symlink {
			if err := unix.Fchmodat(unix.AT_FDCWD, dst, in.Perm, 0); err != nil {
				return err
			}
		}
		mt := time.Unix(in.ModTime, 0)
		return unix.Lutimes(dst, []unix.Timeval{unix.NsecToTimeval(mt.UnixNano()), unix.NsecToTimeval(mt.UnixNano())})
	})
	return err
}

func copyData(in *flatten.Inode, dst string) error {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	if in.Data == "" {
		return nil
	}
	src, err := os.Open(in.Data)
	if err != nil {
		return err
	}
	defer src.Close()
	_, err = io.Copy(out, src)
	return err
}
