package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/image/disk"
)

// writeDisk writes the A/B disk image and compresses it to disk.img.zst.
func writeDisk(ctx context.Context, spec Spec, work string, m *Manifest, epoch int64, log *slog.Logger, prog Progress) error {
	prog("write disk image", 0, 0)
	raw := filepath.Join(work, ".disk.img")
	defer os.Remove(raw)
	in := disk.Input{Boot: filepath.Join(work, BootFile), Root: filepath.Join(work, RootFile), Verity: filepath.Join(work, VerityFile), CopyB: spec.CopySlotB}
	if spec.CopySlotB {
		in.BootB = filepath.Join(work, BootBFile)
	}
	id := spec.diskID(m.InputDigest)
	l, err := disk.Write(ctx, raw, in, disk.Options{Sizes: spec.DiskSizes, DiskID: id, ControlSerial: derive32(m.InputDigest, "control serial"), Epoch: epoch})
	if err != nil {
		return err
	}
	rawSize, rawDigest, err := compressFile(ctx, raw, filepath.Join(work, DiskFile), prog)
	if err != nil {
		return err
	}
	b, err := blobOf(work, DiskFile)
	if err != nil {
		return err
	}
	m.Disk = &DiskInfo{Blob: b, RawSize: rawSize, RawDigest: rawDigest, DiskID: fmt.Sprintf("%08x", id), Partitions: l.Partitions}
	log.Info("disk image written", "bytes", rawSize, "compressed", b.Size)
	return nil
}

// compressFile zstd-compresses src into dst and returns the size and digest of src, in one
// pass. Holes of the sparse source are not read: zeros are fed for them.
func compressFile(ctx context.Context, src, dst string, prog Progress) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", fmt.Errorf("compress disk image: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return 0, "", fmt.Errorf("compress disk image: %w", err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return 0, "", fmt.Errorf("compress disk image: %w", err)
	}
	defer out.Close()
	enc, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return 0, "", fmt.Errorf("compress disk image: %w", err)
	}
	defer enc.Close()
	h := sha256.New()
	w := io.MultiWriter(enc, h)
	buf := make([]byte, 4<<20)
	zeros := make([]byte, len(buf))
	size := fi.Size()
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return 0, "", err
		}
		data, err := in.Seek(off, unix.SEEK_DATA)
		if err != nil { // no data after off (ENXIO): the rest is a hole
			data = size
		}
		for off < data { // a hole: zeros without reading
			n := min(int64(len(zeros)), data-off)
			w.Write(zeros[:n])
			off += n
		}
		if off >= size {
			break
		}
		hole, err := in.Seek(off, unix.SEEK_HOLE)
		if err != nil {
			hole = size
		}
		for off < hole {
			n := min(int64(len(buf)), hole-off)
			if _, err := in.ReadAt(buf[:n], off); err != nil {
				return 0, "", fmt.Errorf("compress disk image: %w", err)
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return 0, "", fmt.Errorf("compress disk image: %w", err)
			}
			off += n
		}
		prog("compress disk image", off, size)
	}
	if err := enc.Close(); err != nil {
		return 0, "", fmt.Errorf("compress disk image: %w", err)
	}
	if err := out.Sync(); err != nil {
		return 0, "", fmt.Errorf("compress disk image: %w", err)
	}
	return size, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
