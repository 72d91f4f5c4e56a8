package resolve

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/singleflight"
)

// fatSource serves the files of a FAT image read in place. One fatSource
// lives for one request: it looks the image up once and holds it until done.
type fatSource struct {
	path  string
	cache *fatCache
	idx   *fatIndex // held from the first lookup until done
}

func (s *fatSource) String() string { return fmt.Sprintf("FAT image %s", s.path) }

// index returns the image's current index, looked up once per request.
func (s *fatSource) index() (*fatIndex, error) {
	if s.idx == nil {
		idx, err := s.cache.get(s.path)
		if err != nil {
			return nil, err
		}
		s.idx = idx
	}
	return s.idx, nil
}

func (s *fatSource) done() {
	if s.idx != nil {
		s.idx.release()
		s.idx = nil
	}
}

func (s *fatSource) exists(_ context.Context, name string) bool {
	idx, err := s.index()
	if err != nil {
		return false
	}
	_, ok := idx.files[strings.ToLower(name)]
	return ok
}

func (s *fatSource) open(_ context.Context, name string) (*File, error) {
	idx, err := s.index()
	if err != nil {
		return nil, err
	}
	e, ok := idx.files[strings.ToLower(name)]
	if !ok || e.dir {
		why := "is not in " + s.String()
		if ok {
			why = "is a directory in " + s.String()
		}
		return nil, notFound(name, why)
	}
	var first int64
	if len(e.extents) > 0 {
		first = e.extents[0].off
	}
	var content io.ReadSeeker
	if len(e.extents) == 1 {
		content = io.NewSectionReader(idx.img, e.extents[0].off, e.size)
	} else {
		content = newExtentReader(idx.img, e.extents, e.size)
	}
	if !idx.acquire() {
		return nil, fmt.Errorf("%w: %s was closed while in use", ErrSourceUnavailable, s)
	}
	var once sync.Once
	return &File{
		Content: content,
		Closer:  closerFunc(func() error { once.Do(idx.release); return nil }),
		Size:    e.size,
		ModTime: e.modTime,
		ETag:    fmt.Sprintf("\"fat-%x-%x-%x-%x-%x\"", idx.key.ino, idx.key.size, idx.key.mtime, first, e.size),
		Path:    e.path,
	}, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// fatKey identifies one version of an image file.
type fatKey struct {
	ino, size uint64
	mtime     int64
}

func fatKeyOf(st os.FileInfo) fatKey {
	k := fatKey{size: uint64(st.Size()), mtime: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		k.ino = uint64(sys.Ino)
	}
	return k
}

// fatIndex is one indexed version of an image, shared by all Opens of it.
// The image file stays open while the cache or any served File holds it.
type fatIndex struct {
	key   fatKey
	img   *os.File
	files map[string]*fatEntry

	mu   sync.Mutex
	refs int // the cache's own reference plus one per open File
}

// acquire takes a reference; it fails once the index has been closed.
func (x *fatIndex) acquire() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.refs == 0 {
		return false
	}
	x.refs++
	return true
}

// release drops a reference and closes the image with the last one.
func (x *fatIndex) release() {
	x.mu.Lock()
	x.refs--
	last := x.refs == 0
	x.mu.Unlock()
	if last {
		x.img.Close()
	}
}

// fatCache holds the latest indexed version of each image path. A changed
// image (size, mtime or inode) is indexed again at the next Open; the old
// version is closed when its last served File is.
type fatCache struct {
	mu     sync.Mutex
	byPath map[string]*fatIndex
	build  singleflight.Group
}

func newFATCache() *fatCache { return &fatCache{byPath: map[string]*fatIndex{}} }

// get returns the current index of an image with a reference taken; the
// caller releases it.
func (c *fatCache) get(p string) (*fatIndex, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: FAT image: %v", ErrSourceUnavailable, err)
	}
	key := fatKeyOf(st)
	for range 3 {
		c.mu.Lock()
		idx := c.byPath[p]
		c.mu.Unlock()
		if idx != nil && idx.key == key && idx.acquire() {
			return idx, nil
		}
		v, err, _ := c.build.Do(fmt.Sprintf("%s\x00%v", p, key), func() (any, error) { return c.index(p) })
		if err != nil {
			return nil, err
		}
		if idx := v.(*fatIndex); idx.acquire() {
			return idx, nil
		}
	}
	return nil, fmt.Errorf("%w: FAT image %s keeps changing while being indexed", ErrSourceUnavailable, p)
}

// index opens and indexes an image and makes it the path's current one.
func (c *fatCache) index(p string) (*fatIndex, error) {
	img, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%w: FAT image: %v", ErrSourceUnavailable, err)
	}
	st, err := img.Stat()
	if err != nil {
		img.Close()
		return nil, fmt.Errorf("%w: FAT image: %v", ErrSourceUnavailable, err)
	}
	files, err := fatIndexOf(img, st.Size())
	if err != nil {
		img.Close()
		return nil, fmt.Errorf("%w: FAT image %s: %v", ErrSourceUnavailable, p, err)
	}
	idx := &fatIndex{key: fatKeyOf(st), img: img, files: files, refs: 1}
	c.mu.Lock()
	old := c.byPath[p]
	c.byPath[p] = idx
	c.mu.Unlock()
	if old != nil {
		old.release()
	}
	return idx, nil
}

// retain drops (and closes, once unused) the indexes of images whose path
// is not in keep: images the config no longer names.
func (c *fatCache) retain(keep map[string]bool) {
	c.mu.Lock()
	var drop []*fatIndex
	for p, idx := range c.byPath {
		if !keep[p] {
			drop = append(drop, idx)
			delete(c.byPath, p)
		}
	}
	c.mu.Unlock()
	for _, idx := range drop {
		idx.release()
	}
}

// drop forgets the index of path p (an image replaced by another).
func (c *fatCache) drop(p string) {
	c.mu.Lock()
	idx := c.byPath[p]
	delete(c.byPath, p)
	c.mu.Unlock()
	if idx != nil {
		idx.release()
	}
}
