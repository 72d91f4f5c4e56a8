package imagestore

import (
	"github.com/racklet/racklet-boot/internal/ctxio"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ErrDamaged: a blob in the store no longer hashes to its name (a flipped
// bit on disk, a write by someone else). The store drops it; Ensure fetches
// it again.
var ErrDamaged = errors.New("cached blob does not match its digest")

// fileID identifies one version of a file: any write (which changes mtime
// and ctime), truncation or replacement changes it. ctime cannot be set
// back from user space.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

func fileIDOf(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
		id.ctime = st.Ctim.Sec*1e9 + st.Ctim.Nsec
	}
	return id
}

// checkBlob makes sure the stored blob desc is exactly what its digest
// names. A file already hashed by this Store and unchanged since (same
// fileID) costs one stat; any other is hashed in full, once. A blob that
// is missing wraps fs.ErrNotExist; one of the wrong size or content is
// removed and the error wraps ErrDamaged.
func (s *Store) checkBlob(ctx context.Context, desc v1.Descriptor) error {
	path := s.BlobPath(desc.Digest)
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	id := fileIDOf(fi)
	s.mu.Lock()
	known := s.hashed[desc.Digest.Hex] == id
	s.mu.Unlock()
	if known && id.size == desc.Size {
		return nil
	}
	_, err, _ = s.hashing.Do(desc.Digest.Hex, func() (any, error) { return nil, s.hashBlob(ctx, desc, path) })
	return err
}

// hashBlob hashes the file at path; on a match it remembers the file's
// identity, on a mismatch it removes the file.
func (s *Store) hashBlob(ctx context.Context, desc v1.Descriptor, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, ctxio.Reader(ctx, f))
	if err != nil {
		return fmt.Errorf("hash stored blob %s: %w", desc.Digest, err)
	}
	after, err := f.Stat()
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	got := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if got == desc.Digest.String() && n == desc.Size {
		if id := fileIDOf(after); id == fileIDOf(before) {
			s.mu.Lock()
			s.hashed[desc.Digest.Hex] = id
			s.mu.Unlock()
		}
		return nil
	}
	s.forget(desc.Digest)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.ErrorContext(ctx, "cached blob is damaged and cannot be removed", "file", path, "err", err)
	}
	s.log.WarnContext(ctx, "cached blob is damaged: dropped, it will be fetched again",
		"file", path, "digest", desc.Digest.String(), "size", desc.Size, "read", n, "hash", got)
	return fmt.Errorf("%w: %s holds %d bytes %s, want %d bytes %s", ErrDamaged, path, n, got, desc.Size, desc.Digest)
}

// remember records that the blob at its path was just written and hashed.
func (s *Store) remember(d v1.Hash) {
	fi, err := os.Stat(s.BlobPath(d))
	if err != nil {
		return
	}
	s.mu.Lock()
	s.hashed[d.Hex] = fileIDOf(fi)
	s.mu.Unlock()
}

// forget drops what the store knows of blob d.
func (s *Store) forget(d v1.Hash) {
	s.mu.Lock()
	delete(s.hashed, d.Hex)
	s.mu.Unlock()
}

// Recheck confirms that every blob of img (its manifests, boot partition,
// root and verity blobs) is still what was verified: one stat per blob when
// nothing changed, a full hash of a blob whose file changed. A damaged blob
// is removed and the error wraps ErrDamaged: call Ensure to fetch it again.
func (s *Store) Recheck(ctx context.Context, img *Image) error {
	if len(img.blobs) == 0 {
		return fmt.Errorf("image %s was not made by this store", img.Digest)
	}
	for _, desc := range img.blobs {
		if err := s.checkBlob(ctx, desc); err != nil {
			return fmt.Errorf("image %s: %w", img.Digest, err)
		}
	}
	return nil
}
