package resolve

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzFATIndex feeds corrupt images to the FAT indexer: it must return an
// error or an index whose extents lie inside the image, never panic.
func FuzzFATIndex(f *testing.F) {
	seed, err := os.ReadFile(mtoolsImage(f, "12", 64, nil))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, img []byte) {
		p := filepath.Join(t.TempDir(), "fuzz.img")
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		files, err := fatIndexOf(fh, int64(len(img)))
		if err != nil {
			return
		}
		for key, e := range files {
			var n int64
			for _, x := range e.extents {
				if x.off < 0 || x.n <= 0 || x.off+x.n > int64(len(img)) {
					t.Fatalf("%s: extent %+v outside the %d-byte image", key, x, len(img))
				}
				n += x.n
			}
			if !e.dir && n != e.size {
				t.Fatalf("%s: extents hold %d of %d bytes", key, n, e.size)
			}
		}
	})
}
