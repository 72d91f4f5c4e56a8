package initramfs

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how the archive is compressed; the kernel must have the matching decompressor
// (CONFIG_RD_ZSTD, CONFIG_RD_GZIP).
type Compression string

// Compressions the kernel unpacks.
const (
	Zstd Compression = "zstd"
	Gzip Compression = "gzip"
	None Compression = "none"
)

// ParseKernelConfig reads the "CONFIG_X=value" lines of a kernel's build configuration
// (/boot/config-<version>); "# CONFIG_X is not set" lines are left out.
func ParseKernelConfig(r io.Reader) (map[string]string, error) {
	cfg := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(l, "CONFIG_") {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if ok {
			cfg[k] = strings.Trim(v, `"`)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read kernel config: %w", err)
	}
	return cfg, nil
}

// ChooseCompression picks zstd when the kernel unpacks it (CONFIG_RD_ZSTD=y), else gzip
// (CONFIG_RD_GZIP=y). A nil config (the base ships none) means gzip, the decompressor every
// kernel has unless it was left out on purpose.
func ChooseCompression(cfg map[string]string) (Compression, error) {
	switch {
	case cfg == nil:
		return Gzip, nil
	case cfg["CONFIG_RD_ZSTD"] == "y":
		return Zstd, nil
	case cfg["CONFIG_RD_GZIP"] == "y":
		return Gzip, nil
	}
	return "", fmt.Errorf("the kernel config has neither CONFIG_RD_ZSTD=y nor CONFIG_RD_GZIP=y: it cannot unpack racklet's initramfs")
}

// zstdWindow bounds the zstd window: the kernel's initramfs decompressor streams with a
// window it allocates up front, and 8 MiB is what zstd -19 uses.
const zstdWindow = 8 << 20

// compressor wraps w in the writer of c; Close flushes it (and does not close w).
func compressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
			zstd.WithWindowSize(zstdWindow), zstd.WithEncoderCRC(true))
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.BestCompression) // no name, zero mtime: reproducible
	case None:
		return nopCloser{w}, nil
	}
	return nil, fmt.Errorf("initramfs compression %q: want zstd, gzip or none", c)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
