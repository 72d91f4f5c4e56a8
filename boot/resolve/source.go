package resolve

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/racklet/racklet-boot/rack"
)

// ErrImageSource is wrapped by errors for nodes whose boot source is an OCI
// image when the resolver was made without Options.Images.
var ErrImageSource = errors.New("OCI image sources are not configured in this server")

// ErrSourceUnavailable is wrapped when a boot source itself cannot be read
// (a missing directory, a corrupt FAT image): an operator problem, not a
// missing file, so servers should log it loudly.
var ErrSourceUnavailable = errors.New("boot source unavailable")

// source is one node's boot files: a directory or a FAT image.
type source interface {
	// open returns the regular file at a cleaned name; errors wrap
	// os.ErrNotExist when there is none (directories included).
	open(ctx context.Context, name string) (*File, error)
	// exists reports whether a file or directory is at a cleaned name.
	exists(ctx context.Context, name string) bool
	// String names the source in messages.
	String() string
	// done ends the request: the source releases what it held for it.
	done()
}

// sourceFor returns the boot source of b, nil when b names none.
func (r *Resolver) sourceFor(ctx context.Context, b rack.Boot) (source, error) {
	switch {
	case b.Image != "":
		return r.imageSourceFor(ctx, b.Image)
	case b.FAT != "":
		return &fatSource{path: r.sourcePath(b.FAT), cache: r.fat}, nil
	case b.Dir != "":
		return &dirSource{dir: r.sourcePath(b.Dir)}, nil
	}
	return nil, nil
}

// dirSource serves a directory through os.Root: no name, symlink or ".."
// can lead outside it. One dirSource lives for one request and opens the
// root once, so replacing the directory (or a symlink to it) takes effect
// at the next request.
type dirSource struct {
	dir  string
	root *os.Root // opened on first use, closed by done
}

func (d *dirSource) String() string { return fmt.Sprintf("dir %s", d.dir) }

func (d *dirSource) done() {
	if d.root != nil {
		d.root.Close()
		d.root = nil
	}
}

func (d *dirSource) openRoot() (*os.Root, error) {
	if d.root == nil {
		root, err := os.OpenRoot(d.dir)
		if err != nil {
			return nil, fmt.Errorf("%w: open boot %s: %v", ErrSourceUnavailable, d, err)
		}
		d.root = root
	}
	return d.root, nil
}

func (d *dirSource) exists(_ context.Context, name string) bool {
	root, err := d.openRoot()
	if err != nil {
		return false
	}
	_, err = root.Lstat(name)
	return err == nil
}

func (d *dirSource) open(_ context.Context, name string) (*File, error) {
	root, err := d.openRoot()
	if err != nil {
		return nil, err
	}
	// O_NONBLOCK: opening a FIFO planted in the tree must not hang; it is
	// refused below as not a regular file. Regular files ignore the flag.
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, d.openError(name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat %s in %s: %w", name, d, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notFound(name, fmt.Sprintf("is not a regular file in %s", d))
	}
	return &File{
		Content: f,
		Closer:  f,
		Size:    st.Size(),
		ModTime: st.ModTime(),
		ETag:    fileETag(st),
		Path:    name,
	}, nil
}

// openError sorts an os.Root error into not-found, refused or other.
func (d *dirSource) openError(name string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return notFound(name, fmt.Sprintf("is not in %s", d))
	case errors.Is(err, syscall.ELOOP), escapesRoot(err):
		return fmt.Errorf("%w: %s in %s leads outside the boot directory", ErrRefused, quoteShort(name), d)
	}
	return fmt.Errorf("open %s in %s: %w", name, d, err)
}

// escapesRoot reports whether err is os.Root's refusal of a path that
// leads outside the root (the error value is not exported).
func escapesRoot(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes from parent")
}

// fileETag is a strong validator for a file on disk: inode, size and
// modification time in nanoseconds change whenever the content can have.
func fileETag(st fs.FileInfo) string {
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = uint64(sys.Ino)
	}
	return fmt.Sprintf("\"%x-%x-%x\"", ino, st.Size(), st.ModTime().UnixNano())
}

// notFoundError is a missing boot file, worded for the operator.
type notFoundError struct {
	name, why string
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("boot file %s %s", quoteShort(e.name), e.why)
}

func (e *notFoundError) Unwrap() error { return os.ErrNotExist }

func notFound(name, why string) error { return &notFoundError{name: name, why: why} }
