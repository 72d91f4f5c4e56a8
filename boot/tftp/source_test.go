package tftp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// readBlocks reads a whole file through src at blksize.
func readBlocks(t *testing.T, src blockSource, blksize int) []byte {
	t.Helper()
	var out []byte
	p := make([]byte, blksize)
	for idx := int64(1); ; idx++ {
		n, err := src.block(idx, p)
		if err != nil {
			t.Fatalf("block %d: %v", idx, err)
		}
		out = append(out, p[:n]...)
		if n < blksize {
			return out
		}
	}
}

// TestBlockSources reads the same bytes through each kind of source and
// checks which one newBlockSource picks.
func TestBlockSources(t *testing.T) {
	data := pattern(100_000)
	path := filepath.Join(t.TempDir(), "img")
	// The file sits at offset 4096 of a larger "image", as a boot file
	// inside a FAT partition does.
	img := append(append(pattern(4096), data...), pattern(999)...)
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	maps := newMapCache()
	open := func() *os.File {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	tests := map[string]struct {
		r    io.ReadSeeker
		size int64
		want []byte
		kind string
	}{
		"whole file, mapped": {open(), int64(len(img)), img, "*tftp.mapSource"},
		"section, mapped":    {io.NewSectionReader(open(), 4096, int64(len(data))), int64(len(data)), data, "*tftp.mapSource"},
		"reader at":          {bytes.NewReader(data), int64(len(data)), data, "*tftp.readAtSource"},
		"only a seeker":      {struct{ io.ReadSeeker }{bytes.NewReader(data)}, int64(len(data)), data, "*tftp.seekSource"},
		"unknown size":       {open(), -1, img, "*tftp.seekSource"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := newBlockSource(maps, tc.r, tc.size)
			defer src.release()
			if got := fmt.Sprintf("%T", src); got != tc.kind {
				t.Errorf("source %s, want %s", got, tc.kind)
			}
			for _, blk := range []int{512, 1468, 65464} {
				if got := readBlocks(t, src, blk); !bytes.Equal(got, tc.want) {
					t.Fatalf("blksize %d: read %d bytes, differing from the %d expected", blk, len(got), len(tc.want))
				}
			}
		})
	}
	if n := maps.len(); n != 0 {
		t.Errorf("%d mappings left after every source was released", n)
	}
}

// TestMapShared: two transfers of one file share one mapping, released
// with the last of them.
func TestMapShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, pattern(10_000), 0o644); err != nil {
		t.Fatal(err)
	}
	maps := newMapCache()
	var srcs []blockSource
	for range 2 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		srcs = append(srcs, newBlockSource(maps, f, 10_000))
	}
	if a, b := srcs[0].(*mapSource), srcs[1].(*mapSource); a.m != b.m || maps.len() != 1 {
		t.Fatalf("two opens of one file: %d mappings, shared %v", maps.len(), a.m == b.m)
	}
	srcs[0].release()
	if maps.len() != 1 {
		t.Fatal("mapping dropped while a transfer still uses it")
	}
	srcs[1].release()
	if maps.len() != 0 {
		t.Fatal("mapping kept after the last transfer")
	}
}

// mappedFile writes a file of size bytes and returns its path and a mapped
// source over it, released at cleanup.
func mappedFile(t *testing.T, size int) (string, *mapSource) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, pattern(size), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	src, ok := newBlockSource(newMapCache(), f, int64(size)).(*mapSource)
	if !ok {
		t.Fatal("a regular file was not mapped")
	}
	t.Cleanup(src.release)
	return path, src
}

// TestMapTruncated: a file cut short under a running transfer makes that
// transfer fail with an error instead of crashing the server (SIGBUS).
func TestMapTruncated(t *testing.T) {
	path, src := mappedFile(t, 1<<20)
	p := make([]byte, 1468)
	if _, err := src.block(1, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := src.block(500, p); err == nil || !strings.Contains(err.Error(), "changed while") {
		t.Fatalf("block of a truncated file: err %v, want a read error", err)
	}
}

// TestMapTruncatedSend: a block sent in place from the mapping of a file
// truncated under it fails with EFAULT from the kernel's copy.
func TestMapTruncatedSend(t *testing.T) {
	path, src := mappedFile(t, 1<<20)
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	fd, err := dialUDP(nil, sink.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	defer closeFd(fd)
	w := fdWriter(fd)
	hdr := []byte{0, opDATA, 0, 1}
	if err := w.writev(hdr, src.slice(1, 1468)); err != nil {
		t.Fatalf("send from the mapping: %v", err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.writev(hdr, src.slice(500, 1468)); !errors.Is(err, unix.EFAULT) {
		t.Fatalf("send from a truncated mapping: %v, want EFAULT", err)
	}
}
