package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// ErrVerify means the device did not read back what was written.
var ErrVerify = errors.New("flashed device does not read back the image")

// Progress is told how many bytes are done; total is -1 when unknown (compressed input).
type Progress func(done, total int64)

// Flash writes the disk image at src to dst (a block device or a file), syncs it, drops the
// cached pages and reads it back, comparing SHA-256. src ending in ".zst" is decompressed.
// A block device the running system uses (Inspect: mounted, the root file system, swap, or
// under a device that is) is refused with ErrInUse, and it is opened exclusively (O_EXCL:
// the kernel refuses while anything holds it). Asking the operator is the caller's job.
func Flash(ctx context.Context, src, dst string, progress Progress) error {
	t, err := Inspect(dst)
	if err != nil {
		return err
	}
	if err := t.InUse(); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open image: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return fmt.Errorf("open image: %w", err)
	}
	total := fi.Size()
	var r io.Reader = in
	if strings.HasSuffix(src, ".zst") {
		dec, err := zstd.NewReader(in)
		if err != nil {
			return fmt.Errorf("open compressed image: %w", err)
		}
		defer dec.Close()
		r, total = dec, -1
	}
	flags := os.O_WRONLY
	if t.Device {
		flags |= unix.O_EXCL
	} else {
		flags |= os.O_CREATE | os.O_TRUNC
	}
	out, err := os.OpenFile(dst, flags, 0o644)
	if err != nil {
		return fmt.Errorf("open device %s: %w", dst, err)
	}
	h := sha256.New()
	n, err := copyCtx(ctx, out, io.TeeReader(r, h), total, progress)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	want := h.Sum(nil)
	back, err := os.Open(dst)
	if err != nil {
		return fmt.Errorf("read back %s: %w", dst, err)
	}
	defer back.Close()
	unix.Fadvise(int(back.Fd()), 0, 0, unix.FADV_DONTNEED)
	h2 := sha256.New()
	if _, err := io.Copy(h2, io.LimitReader(back, n)); err != nil {
		return fmt.Errorf("read back %s: %w", dst, err)
	}
	if !bytes.Equal(h2.Sum(nil), want) {
		return fmt.Errorf("%s: sha256 %x after writing, image %x: %w", dst, h2.Sum(nil), want, ErrVerify)
	}
	return nil
}

func copyCtx(ctx context.Context, w io.Writer, r io.Reader, total int64, progress Progress) (int64, error) {
	buf := make([]byte, 4*mib)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return done, werr
			}
			done += int64(n)
			if progress != nil {
				progress(done, total)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return done, nil
		}
		if err != nil {
			return done, err
		}
	}
}
