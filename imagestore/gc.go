package imagestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// GC removes every stored blob that no image in keep references (its
// manifest, image manifest, boot, root and verity blobs), and leftover
// temporary files. It returns how many files it removed. Ensure waits for
// GC and GC for running Ensures. Files open for serving stay readable
// until closed.
func (s *Store) GC(ctx context.Context, keep []v1.Hash) (int, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	live := map[string]bool{}
	for _, d := range keep {
		live[d.Hex] = true
		_, descs, err := readManifest(ctx, localOrigin{s}, d)
		if err != nil {
			continue // not stored (or damaged): nothing of it to keep
		}
		for _, desc := range descs {
			live[desc.Digest.Hex] = true
		}
	}
	dir := filepath.Join(s.dir, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("image store gc: %w", err)
	}
	n := 0
	for _, e := range ents {
		if live[e.Name()] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return n, fmt.Errorf("image store gc: %w", err)
		}
		s.mu.Lock()
		delete(s.hashed, e.Name())
		s.mu.Unlock()
		n++
	}
	s.mu.Lock()
	for k := range s.verified {
		if !live[k[len("sha256:"):len("sha256:")+64]] {
			delete(s.verified, k)
		}
	}
	s.mu.Unlock()
	return n, nil
}
