package imagestore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Usage is what the store holds on disk.
type Usage struct {
	Blobs int   // stored blobs (manifests, image manifests, boot, root and verity files)
	Bytes int64 // their total size
}

// Usage counts the stored blobs and their bytes (temporary files of
// fetches in progress are left out).
func (s *Store) Usage() (Usage, error) {
	var u Usage
	ents, err := os.ReadDir(filepath.Join(s.dir, "blobs", "sha256"))
	if err != nil {
		return u, fmt.Errorf("image store usage: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || len(e.Name()) != 64 || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed by GC meanwhile
		}
		u.Blobs++
		u.Bytes += fi.Size()
	}
	return u, nil
}
