package resolve

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
)

// Bounds on what indexing a FAT image may cost: a corrupt image must fail,
// not loop.
const (
	fatMaxDepth   = 32
	fatMaxEntries = 100_000
)

// fatEntry is one file or directory of a FAT image, located once at index
// time: reads go straight to the image file through its extents.
type fatEntry struct {
	path    string // as stored (long name where there is one)
	dir     bool
	size    int64
	modTime time.Time
	extents []extent // absolute byte ranges in the image file, covering size exactly
}

// fatIndexOf reads a FAT image (a bare FAT12/16/32 volume, or partition 1
// of an MBR disk image) with go-diskfs and returns every file and directory
// by lower-case path (FAT names are case-insensitive; short 8.3 aliases are
// indexed too). go-diskfs is used read-only and only here: its File.Read
// walks the whole cluster chain on every call, which makes a TFTP-sized
// read of a large file cost O(file size), so files are served from the
// extents instead.
func fatIndexOf(img *os.File, imgSize int64) (files map[string]*fatEntry, err error) {
	// go-diskfs trusts the image it reads; a corrupt one must cost a
	// request an error, not the server a crash.
	defer func() {
		if p := recover(); p != nil {
			files, err = nil, fmt.Errorf("corrupt FAT image (go-diskfs panicked: %v)", p)
		}
	}()
	part, err := fatVolume(img, imgSize)
	if err != nil {
		return nil, err
	}
	d, err := diskfs.OpenBackend(file.New(img, true))
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	fsys, err := d.GetFilesystem(part)
	if err != nil {
		return nil, fmt.Errorf("read the FAT filesystem: %w", err)
	}
	switch fsys.Type() {
	case filesystem.TypeFat12, filesystem.TypeFat16, filesystem.TypeFat32:
	default:
		return nil, fmt.Errorf("the image holds a %v filesystem, not FAT", fsys.Type())
	}
	starter, ok := fsys.(interface{ Start() int64 })
	if !ok {
		return nil, errors.New("go-diskfs FAT filesystem does not report its start offset")
	}
	w := &fatWalker{fsys: fsys, start: starter.Start(), imgSize: imgSize, files: map[string]*fatEntry{}}
	if err := w.walk("", 0); err != nil {
		return nil, err
	}
	return w.files, nil
}

type fatWalker struct {
	fsys    filesystem.FileSystem
	start   int64
	imgSize int64
	files   map[string]*fatEntry
	count   int
}

func (w *fatWalker) walk(dir string, depth int) error {
	if depth > fatMaxDepth {
		return fmt.Errorf("directory %s is nested deeper than %d (a loop in a corrupt image?)", dir, fatMaxDepth)
	}
	fsDir := dir
	if fsDir == "" {
		fsDir = "." // go-diskfs takes io/fs-style paths
	}
	entries, err := w.fsys.ReadDir(fsDir)
	if err != nil {
		return fmt.Errorf("read directory /%s: %w", dir, err)
	}
	for _, de := range entries {
		if w.count++; w.count > fatMaxEntries {
			return fmt.Errorf("more than %d entries (a loop in a corrupt image?)", fatMaxEntries)
		}
		info, err := de.Info()
		if err != nil {
			return fmt.Errorf("stat /%s: %w", path.Join(dir, de.Name()), err)
		}
		p := path.Join(dir, de.Name())
		e := &fatEntry{path: p, dir: de.IsDir(), size: info.Size(), modTime: info.ModTime()}
		if !e.dir {
			if e.extents, err = w.extents(p, e.size); err != nil {
				return err
			}
		}
		w.add(strings.ToLower(p), e)
		if fi, ok := info.(fat12.FileInfo); ok && !strings.EqualFold(fi.ShortName(), de.Name()) {
			w.add(strings.ToLower(path.Join(dir, fi.ShortName())), e)
		}
		if e.dir {
			if err := w.walk(p, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// add indexes an entry under a key unless a real name already holds it.
func (w *fatWalker) add(key string, e *fatEntry) {
	if _, taken := w.files[key]; !taken {
		w.files[key] = e
	}
}

// extents locates a file's bytes in the image file.
func (w *fatWalker) extents(p string, size int64) ([]extent, error) {
	if size == 0 {
		return nil, nil
	}
	f, err := w.fsys.OpenFile(p, os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open /%s: %w", p, err)
	}
	defer f.Close()
	ranged, ok := f.(interface {
		GetDiskRanges() ([]fat12.DiskRange, error)
	})
	if !ok {
		return nil, fmt.Errorf("go-diskfs does not report the disk ranges of /%s", p)
	}
	ranges, err := ranged.GetDiskRanges()
	if err != nil {
		return nil, fmt.Errorf("cluster chain of /%s: %w", p, err)
	}
	var out []extent
	left := size
	for _, r := range ranges {
		if left == 0 {
			break
		}
		n := min(int64(r.Length), left)
		off := w.start + int64(r.Offset)
		if off < 0 || off+n > w.imgSize {
			return nil, fmt.Errorf("/%s: cluster at byte %d lies outside the %d-byte image", p, off, w.imgSize)
		}
		out = append(out, extent{off: off, n: n})
		left -= n
	}
	if left != 0 {
		return nil, fmt.Errorf("/%s: cluster chain holds %d of its %d bytes", p, size-left, size)
	}
	return out, nil
}
