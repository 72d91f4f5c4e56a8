package flatten

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/image/imagetest"
)

// bombs joins sparse-bomb entries into one layer.
func bombs(sizes ...int64) []byte {
	var b bytes.Buffer
	for i, s := range sizes {
		one := imagetest.SparseBomb(fmt.Sprintf("bomb-%d", i), s)
		b.Write(one[:len(one)-1024])
	}
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

func TestLimits(t *testing.T) {
	many := make([]entry, 11)
	for i := range many {
		many[i] = entry{name: fmt.Sprintf("f%d", i), body: "x"}
	}
	tests := map[string]struct {
		layer []byte
		opts  Options
		err   error
	}{
		"1 TiB sparse file, 1 GiB per file":  {layer: bombs(1 << 40), opts: Options{MaxFileSize: 1 << 30}, err: ErrTooLarge},
		"1 TiB sparse file, 16 GiB in all":   {layer: bombs(1 << 40), opts: Options{MaxTotalSize: 16 << 30}, err: ErrTooLarge},
		"three 64 MiB files, 128 MiB in all": {layer: bombs(64<<20, 64<<20, 64<<20), opts: Options{MaxTotalSize: 128 << 20}, err: ErrTooLarge},
		"11 entries, 10 allowed":             {layer: layerTar(t, many), opts: Options{MaxEntries: 10}, err: ErrTooLarge},
		"10 entries allowed":                 {layer: layerTar(t, many[:10]), opts: Options{MaxEntries: 10}},
		"a name component of 256 bytes":      {layer: layerTar(t, []entry{{name: "d/" + strings.Repeat("n", 256), body: "x"}}), err: ErrUnsafeName},
		"a name of 4097 bytes":               {layer: layerTar(t, []entry{{name: strings.Repeat("d/", 2048) + "x", body: "x"}}), err: ErrUnsafeName},
		"65 KiB of xattrs":                   {layer: layerTar(t, []entry{{name: "x", body: "x", xattrs: map[string]string{"user.a": strings.Repeat("v", 65<<10)}}}), err: ErrBadLayer},
		"a symlink target of 4097 bytes":     {layer: layerTar(t, []entry{{name: "l", typ: '2', link: strings.Repeat("t", 4097)}}), err: ErrBadLayer},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.TempDir = t.TempDir()
			b, err := NewBuilder(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Tree().Close()
			start := time.Now()
			err = b.ApplyLayer(context.Background(), bytes.NewReader(tc.layer), 0)
			if !errors.Is(err, tc.err) {
				t.Fatalf("ApplyLayer: %v, want %v", err, tc.err)
			}
			if err != nil {
				t.Logf("refused in %s: %v", time.Since(start).Round(time.Microsecond), err)
			}
		})
	}
}

// TestSparseSpill: a sparse file under the limits is spilled sparse: its
// length is the claimed size, its disk use the one byte of data, its last
// byte the data.
func TestSparseSpill(t *testing.T) {
	b, err := NewBuilder(Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Tree().Close()
	const size = 256 << 20
	if err := b.ApplyLayer(context.Background(), bytes.NewReader(bombs(size)), 0); err != nil {
		t.Fatal(err)
	}
	n := b.Tree().Lookup("bomb-0")
	if n == nil || n.Inode.Size != size {
		t.Fatalf("bomb-0 = %+v, want %d bytes", n, size)
	}
	fi, err := os.Stat(n.Inode.Data)
	if err != nil {
		t.Fatal(err)
	}
	used := fi.Sys().(*syscall.Stat_t).Blocks * 512
	if fi.Size() != size || used > 1<<20 {
		t.Errorf("spilled %d bytes using %d on disk, want %d using at most 1 MiB", fi.Size(), used, size)
	}
	f, err := os.Open(n.Inode.Data)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	last := make([]byte, 1)
	if _, err := f.ReadAt(last, size-1); err != nil || last[0] != '!' {
		t.Errorf("last byte %q, %v; want '!'", last, err)
	}
}
