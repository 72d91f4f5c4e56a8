package ociref

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestCounting: writing a counted image to an OCI layout reports every
// layer byte, ending at the total; the digest is the image's own.
func TestCounting(t *testing.T) {
	img, err := random.Image(1<<16, 3)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var last, total int64
	calls := 0
	o := Options{Progress: func(done, tot int64) {
		mu.Lock()
		defer mu.Unlock()
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		last, total, calls = done, tot, calls+1
	}}
	counted := o.Counting(img)
	want, _ := img.Digest()
	if got, _ := counted.Digest(); got != want {
		t.Fatalf("counting changed the digest: %s, want %s", got, want)
	}
	p, err := layout.Write(filepath.Join(t.TempDir(), "l"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(counted); err != nil {
		t.Fatal(err)
	}
	var size int64
	ls, _ := img.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		size += n
	}
	if total != size || last != size || calls < 3 {
		t.Errorf("progress ended at %d of %d after %d calls, want %d of %d", last, total, calls, size, size)
	}
	if (Options{}).Counting(img) != img {
		t.Error("without Progress, Counting wraps the image")
	}
}
