package squashfs

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression names a squashfs compressor.
type Compression string

// Supported compressors.
const (
	Zstd Compression = "zstd"
	XZ   Compression = "xz"
	Gzip Compression = "gzip"
)

// id is the compressor id of the superblock.
func (c Compression) id() (uint16, error) {
	switch c {
	case Gzip:
		return 1, nil
	case XZ:
		return 4, nil
	case Zstd:
		return 6, nil
	}
	return 0, fmt.Errorf("unknown squashfs compression %q (want zstd, xz or gzip)", string(c))
}

// compressor compresses whole blocks; one per goroutine.
type compressor interface {
	compress(src []byte) ([]byte, error)
}

func newCompressor(c Compression, level, blockSize int) (compressor, error) {
	switch c {
	case Zstd:
		lvl := zstd.SpeedDefault
		if level > 0 {
			lvl = zstd.EncoderLevelFromZstd(level)
		}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(lvl), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(windowFor(blockSize)), zstd.WithEncoderCRC(false))
		if err != nil {
			return nil, fmt.Errorf("zstd encoder: %w", err)
		}
		return zstdComp{enc}, nil
	case XZ:
		return &xzComp{dict: blockSize}, nil
	case Gzip:
		lvl := 9
		if level > 0 {
			lvl = level
		}
		return &zlibComp{level: lvl}, nil
	}
	_, err := c.id()
	return nil, err
}

// windowFor is the smallest zstd window (power of two, at least 1 KiB) that holds a block.
func windowFor(blockSize int) int {
	w := zstd.MinWindowSize
	for w < blockSize {
		w <<= 1
	}
	return w
}

type zstdComp struct{ enc *zstd.Encoder }

func (z zstdComp) compress(src []byte) ([]byte, error) {
	return z.enc.EncodeAll(src, make([]byte, 0, len(src))), nil
}

type xzComp struct {
	dict int
	buf  bytes.Buffer
}

func (x *xzComp) compress(src []byte) ([]byte, error) {
	x.buf.Reset()
	dict := x.dict
	if dict < 4096 {
		dict = 4096
	}
	w, err := xz.WriterConfig{DictCap: dict, CheckSum: xz.CRC32}.NewWriter(&x.buf)
	if err != nil {
		return nil, fmt.Errorf("xz encoder: %w", err)
	}
	if _, err := w.Write(src); err != nil {
		return nil, fmt.Errorf("xz compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("xz compress: %w", err)
	}
	return bytes.Clone(x.buf.Bytes()), nil
}

type zlibComp struct {
	level int
	buf   bytes.Buffer
}

func (z *zlibComp) compress(src []byte) ([]byte, error) {
	z.buf.Reset()
	w, err := zlib.NewWriterLevel(&z.buf, z.level)
	if err != nil {
		return nil, fmt.Errorf("gzip encoder: %w", err)
	}
	if _, err := w.Write(src); err != nil {
		return nil, fmt.Errorf("gzip compress: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("gzip compress: %w", err)
	}
	return bytes.Clone(z.buf.Bytes()), nil
}
