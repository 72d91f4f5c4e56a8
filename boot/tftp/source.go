package tftp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"

	"golang.org/x/sys/unix"
)

// blockSource yields the file's blocks by absolute index (1-based). A block
// shorter than p is the last one. release gives back what the source holds
// (a mapping); it does not close the resolver's file.
type blockSource interface {
	block(idx int64, p []byte) (int, error)
	release()
}

// newBlockSource picks the cheapest way to read r by block: a shared
// read-only mapping of the file when r is an *os.File or a section of one
// (a boot file inside a FAT image), positional reads when r is an
// io.ReaderAt, and seek-then-read otherwise.
func newBlockSource(maps *mapCache, r io.ReadSeeker, size int64) blockSource {
	if maps != nil && size >= 0 {
		switch f := r.(type) {
		case *os.File:
			if m := maps.get(f); m != nil {
				return &mapSource{maps: maps, m: m, off: 0, size: min(size, int64(len(m.data)))}
			}
		case *io.SectionReader:
			if of, ok := sectionFile(f); ok {
				if m := maps.get(of.f); m != nil && of.off+of.n <= int64(len(m.data)) {
					return &mapSource{maps: maps, m: m, off: of.off, size: min(size, of.n)}
				} else if m != nil {
					maps.put(m)
				}
			}
		}
	}
	if ra, ok := r.(io.ReaderAt); ok && size >= 0 {
		return &readAtSource{r: ra, size: size}
	}
	return &seekSource{r: r}
}

type fileSection struct {
	f      *os.File
	off, n int64
}

func sectionFile(s *io.SectionReader) (fileSection, bool) {
	outer, off, n := s.Outer()
	f, ok := outer.(*os.File)
	return fileSection{f, off, n}, ok
}

// slicer is a blockSource whose blocks can be sent in place, without a
// copy into the packet buffer.
type slicer interface {
	slice(idx int64, blksize int) []byte
}

// mapSource serves blocks out of a shared read-only mapping: no system call
// per block and no copy (slice hands the kernel the mapping itself). A file
// truncated under the mapping raises SIGBUS when touched in user space;
// block's copy runs with panic-on-fault and turns it into an error, and the
// kernel's own copy from slice fails with EFAULT.
type mapSource struct {
	maps      *mapCache
	m         *mapping
	off, size int64 // the file's bytes within the mapping
}

func (s *mapSource) block(idx int64, p []byte) (n int, err error) {
	at := (idx - 1) * int64(len(p))
	if at >= s.size {
		return 0, nil
	}
	end := min(at+int64(len(p)), s.size)
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, fmt.Errorf("read block %d: the file changed while it was being sent (%v)", idx, r)
		}
	}()
	old := debug.SetPanicOnFault(true)
	n = copy(p, s.m.data[s.off+at:s.off+end])
	debug.SetPanicOnFault(old)
	return n, nil
}

// slice returns block idx as a slice of the mapping (empty past the end).
func (s *mapSource) slice(idx int64, blksize int) []byte {
	at := (idx - 1) * int64(blksize)
	if at >= s.size {
		return nil
	}
	return s.m.data[s.off+at : s.off+min(at+int64(blksize), s.size)]
}

func (s *mapSource) release() {
	if s.m != nil {
		s.maps.put(s.m)
		s.m = nil
	}
}

// readAtSource reads each block with one positional read.
type readAtSource struct {
	r    io.ReaderAt
	size int64
}

func (s *readAtSource) block(idx int64, p []byte) (int, error) {
	at := (idx - 1) * int64(len(p))
	if at >= s.size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), s.size-at)]
	n, err := s.r.ReadAt(p, at)
	if errors.Is(err, io.EOF) && n == len(p) {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("read block %d: %w", idx, err)
	}
	return n, nil
}

func (s *readAtSource) release() {}

// seekSource reads blocks from a seekable file, seeking only when the
// sender goes back to resend.
type seekSource struct {
	r   io.ReadSeeker
	pos int64
}

func (s *seekSource) block(idx int64, p []byte) (int, error) {
	off := (idx - 1) * int64(len(p))
	if off != s.pos {
		if _, err := s.r.Seek(off, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek to block %d: %w", idx, err)
		}
		s.pos = off
	}
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("read block %d: %w", idx, err)
	}
	return n, nil
}

func (s *seekSource) release() {}

// streamSource reads blocks from a reader that cannot seek, such as the
// netascii translation. It serves the current block again or the next one,
// which is all a lock-step (windowsize 1) sender asks for.
type streamSource struct {
	r   io.Reader
	cur int64
	buf []byte
	n   int
}

func (s *streamSource) block(idx int64, p []byte) (int, error) {
	if s.buf == nil {
		s.buf = make([]byte, len(p))
	}
	switch idx {
	case s.cur:
	case s.cur + 1:
		n, err := io.ReadFull(s.r, s.buf)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		}
		if err != nil {
			return 0, fmt.Errorf("read block %d: %w", idx, err)
		}
		s.cur, s.n = idx, n
	default:
		return 0, fmt.Errorf("netascii transfer cannot go back to block %d from %d", idx, s.cur)
	}
	return copy(p, s.buf[:s.n]), nil
}

func (s *streamSource) release() {}

// mapCache shares one read-only mapping per file version among the
// transfers reading it: a hundred Pis fetching the same kernel read the same
// pages of the kernel's page cache, and the mapping goes away with the last
// of them.
type mapCache struct {
	mu sync.Mutex
	m  map[fileID]*mapping
}

// fileID identifies one version of a file.
type fileID struct {
	dev, ino   uint64
	size       int64
	mtimeNanos int64
}

type mapping struct {
	id   fileID
	data []byte
	refs int
}

func newMapCache() *mapCache { return &mapCache{m: make(map[fileID]*mapping)} }

// get returns a mapping of f's whole file with a reference taken, or nil
// when f cannot be mapped (empty, not a regular file, mmap refused).
func (c *mapCache) get(f *os.File) *mapping {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var m *mapping
	_ = rc.Control(func(fd uintptr) { m = c.getFd(int(fd)) })
	return m
}

func (c *mapCache) getFd(fd int) *mapping {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size <= 0 {
		return nil
	}
	id := fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtimeNanos: st.Mtim.Nano()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.m[id]; m != nil {
		m.refs++
		return m
	}
	if int64(int(st.Size)) != st.Size {
		return nil
	}
	data, err := unix.Mmap(fd, 0, int(st.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	m := &mapping{id: id, data: data, refs: 1}
	c.m[id] = m
	return m
}

// put drops a reference; the last one unmaps.
func (c *mapCache) put(m *mapping) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.refs--; m.refs > 0 {
		return
	}
	delete(c.m, m.id)
	_ = unix.Munmap(m.data)
}

// len returns how many files are mapped.
func (c *mapCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
