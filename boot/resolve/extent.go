package resolve

import (
	"fmt"
	"io"
)

// extent is one contiguous run of a file's bytes in the image file.
type extent struct{ off, n int64 }

// extentReader reads a file stored in several runs; it is an io.ReadSeeker
// and an io.ReaderAt over the image's ReadAt, so readers never share state.
type extentReader struct {
	img   io.ReaderAt
	ext   []extent
	start []int64 // logical offset of each extent
	size  int64
	pos   int64
}

func newExtentReader(img io.ReaderAt, ext []extent, size int64) *extentReader {
	r := &extentReader{img: img, ext: ext, start: make([]int64, len(ext)), size: size}
	var at int64
	for i, e := range ext {
		r.start[i] = at
		at += e.n
	}
	return r
}

// ReadAt reads from logical offset off.
func (r *extentReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	var short error
	if left := r.size - off; int64(len(p)) > left {
		p, short = p[:left], io.EOF
	}
	// the last extent whose start is <= off
	i, j := 0, len(r.start)
	for i < j {
		h := int(uint(i+j) >> 1)
		if r.start[h] <= off {
			i = h + 1
		} else {
			j = h
		}
	}
	n := 0
	for k := i - 1; k < len(r.ext) && n < len(p); k++ {
		in := off + int64(n) - r.start[k]
		want := min(int64(len(p)-n), r.ext[k].n-in)
		m, err := r.img.ReadAt(p[n:n+int(want)], r.ext[k].off+in)
		n += m
		if err != nil && !(err == io.EOF && int64(m) == want) {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
	}
	if n < len(p) {
		return n, io.ErrUnexpectedEOF // extents shorter than size: cannot happen for indexed files
	}
	return n, short
}

// Read reads from the current position.
func (r *extentReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// Seek sets the position for the next Read.
func (r *extentReader) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, fmt.Errorf("seek: invalid whence %d", whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek to negative position %d", offset)
	}
	r.pos = offset
	return offset, nil
}
