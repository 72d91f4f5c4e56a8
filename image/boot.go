package image

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/racklet/racklet-boot/image/fat"
	"github.com/racklet/racklet-boot/image/flatten"
)

// ErrNoBoot means the root file system has no boot directory to build the boot partition from.
var ErrNoBoot = errors.New("no boot files in the root file system")

// defaultConfigTxt is used when neither the spec nor the base supplies config.txt.
const defaultConfigTxt = "# Rendered by racklet-image.\narm_64bit=1\nenable_uart=1\n"

// bootDir finds the boot directory of the tree: the spec's, else boot/firmware, else boot.
func bootDir(t *flatten.Tree, want string) (string, *flatten.Node, error) {
	cands := []string{"boot/firmware", "boot"}
	if want != "" {
		cands = []string{strings.Trim(path.Clean("/"+want), "/")}
	}
	for _, c := range cands {
		if n := t.Lookup(c); n != nil && n.Inode.Kind == flatten.Dir && len(n.Children) > 0 {
			return c, n, nil
		}
	}
	return "", nil, fmt.Errorf("looked in /%s: %w", strings.Join(cands, ", /"), ErrNoBoot)
}

// bootFiles lists the regular files under the boot directory (symlinks to regular files in
// the same directory tree are followed once), without config.txt and cmdline.txt, and returns
// the base's config.txt content when it has one.
func bootFiles(t *flatten.Tree, dir string) ([]fat.File, []byte, error) {
	var files []fat.File
	var config []byte
	prefix := dir + "/"
	err := t.Walk(func(p string, n *flatten.Node) error {
		if !strings.HasPrefix(p, prefix) {
			return nil
		}
		rel := strings.TrimPrefix(p, prefix)
		in := n.Inode
		if in.Kind == flatten.Symlink {
			target := path.Join(path.Dir(p), in.Target)
			if strings.HasPrefix(in.Target, "/") {
				target = strings.TrimPrefix(path.Clean(in.Target), "/")
			}
			tn := t.Lookup(target)
			if tn == nil || tn.Inode.Kind != flatten.Regular || !strings.HasPrefix(target, prefix) {
				return nil
			}
			in = tn.Inode
		}
		if in.Kind != flatten.Regular {
			return nil
		}
		switch rel {
		case "config.txt":
			b, err := readInode(in)
			if err != nil {
				return err
			}
			config = b
			return nil
		case "cmdline.txt":
			return nil
		}
		files = append(files, inodeFile(rel, in))
		return nil
	})
	return files, config, err
}

func inodeFile(rel string, in *flatten.Inode) fat.File {
	return fat.File{Path: rel, Size: in.Size, Open: func() (io.ReadCloser, error) {
		if in.Data == "" {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return os.Open(in.Data)
	}}
}

func readInode(in *flatten.Inode) ([]byte, error) {
	if in.Data == "" {
		return nil, nil
	}
	return os.ReadFile(in.Data)
}

func memFile(p string, b []byte) fat.File {
	return fat.File{Path: p, Size: int64(len(b)), Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

// kernelVersion is the last name under lib/modules (or usr/lib/modules), "" when none.
func kernelVersion(t *flatten.Tree) string {
	for _, d := range []string{"usr/lib/modules", "lib/modules"} {
		n := t.Lookup(d)
		if n == nil || n.Inode.Kind != flatten.Dir {
			continue
		}
		var names []string
		for name, c := range n.Children {
			if c.Inode.Kind == flatten.Dir {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			return names[len(names)-1]
		}
	}
	return ""
}
