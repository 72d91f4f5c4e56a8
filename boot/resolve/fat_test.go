package resolve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/google/go-cmp/cmp"
	"github.com/racklet/racklet-boot/rack"
)

// fatResolver serves one FAT image to node pi-fat (serial 5b154510).
func fatResolver(t testing.TB, img string) *Resolver {
	t.Helper()
	return New(inventory.New(&rack.Config{Nodes: []rack.Node{{Name: "pi-fat", Kind: rack.KindRPi4, Serial: "5b154510", Boot: rack.Boot{FAT: img}}}}), Options{})
}

func TestOpenFAT(t *testing.T) {
	images := map[string]func(t *testing.T) string{
		"mkfs.vfat FAT12":     func(t *testing.T) string { return mtoolsImage(t, "12", 2048, nil) },
		"mkfs.vfat FAT16":     func(t *testing.T) string { return mtoolsImage(t, "16", 16384, nil) },
		"mkfs.vfat FAT32":     func(t *testing.T) string { return mtoolsImage(t, "32", 65536, nil) },
		"MBR partition 1":     func(t *testing.T) string { return mbrImage(t, mtoolsImage(t, "32", 65536, nil)) },
		"go-diskfs FAT32":     func(t *testing.T) string { return diskfsImage(t) },
		"MBR FAT16 partition": func(t *testing.T) string { return mbrImage(t, mtoolsImage(t, "16", 16384, nil)) },
	}
	for imgName, build := range images {
		t.Run(imgName, func(t *testing.T) {
			r := fatResolver(t, build(t))
			tests := map[string]result{
				"start4.elf":               {Content: "start4 from FAT", Node: "pi-fat", Path: "start4.elf"},
				"bcm2711-rpi-4-b.dtb":      {Content: "dtb", Node: "pi-fat", Path: "bcm2711-rpi-4-b.dtb"},
				"overlays/overlay_map.dtb": {Content: "map", Node: "pi-fat", Path: "overlays/overlay_map.dtb"},
				"overlays/a-very-long-overlay-name-for-tests.dtbo": {Content: "long overlay", Node: "pi-fat", Path: "overlays/a-very-long-overlay-name-for-tests.dtbo"},
				"overlays/empty.dtbo":                              {Node: "pi-fat", Path: "overlays/empty.dtbo"},
				"a/b/c/d/deep.txt":                                 {Content: "deep file", Node: "pi-fat", Path: "a/b/c/d/deep.txt"},
				"KERNEL8.IMG":                                      {Content: "kernel8 from FAT", Node: "pi-fat", Path: "Kernel8.img"},
				"config.txt":                                       {Content: "# pi-fat from FAT\n", Node: "pi-fat", Path: "config.txt"},
				"overlays":                                         {Err: "not-found"},
				"a/b":                                              {Err: "not-found"},
				"start.elf":                                        {Err: "not-found"},
				"start4.elf/x":                                     {Err: "not-found"},
				"pieeprom.upd":                                     {Err: "not-found"},
				"config.txt.tmpl":                                  {Err: "not-found"},
			}
			for name, want := range tests {
				got := resolveResult(t, r, Request{Name: "5b154510/" + name, Via: "tftp"})
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// bigFATImage builds a FAT32 image holding a fragmented 20 MB big/initramfs.img.
func bigFATImage(t testing.TB) (string, []byte) {
	big := randomBytes(42, 20<<20)
	return mtoolsImage(t, "32", 65536, big), big
}

func TestFATBigFile(t *testing.T) {
	img, big := bigFATImage(t)
	r := fatResolver(t, img)
	f, err := r.Open(context.Background(), Request{Name: "5b154510/big/initramfs.img"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if er, ok := f.Content.(*extentReader); !ok {
		t.Fatalf("big file content is %T: the test image did not fragment it, so the extent reader goes untested", f.Content)
	} else {
		t.Logf("big file in %d extents", len(er.ext))
	}
	got, err := io.ReadAll(f.Content)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != int64(len(big)) || !bytes.Equal(got, big) {
		t.Fatalf("read %d bytes (Size %d); content equal: %v", len(got), f.Size, bytes.Equal(got, big))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 70<<10)
	for i := range 500 {
		off := rng.Int64N(int64(len(big)) + 10)
		n := 1 + rng.IntN(len(buf))
		if _, err := f.Content.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		m, err := io.ReadFull(f.Content, buf[:n])
		wantN := min(n, max(0, len(big)-int(off)))
		if m != wantN || !bytes.Equal(buf[:m], big[min(off, int64(len(big))):min(off, int64(len(big)))+int64(m)]) {
			t.Fatalf("round %d: seek %d read %d: got %d bytes (%v), want %d", i, off, n, m, err, wantN)
		}
	}
}

func TestFATConcurrent(t *testing.T) {
	img, big := bigFATImage(t)
	r := fatResolver(t, img)
	want := sha256.Sum256(big)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			f, err := r.Open(context.Background(), Request{Name: "5b154510/big/initramfs.img"})
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			h := sha256.New()
			// TFTP-sized reads, as a Pi at blksize 1468 asks for them.
			if _, err := io.CopyBuffer(h, f.Content, make([]byte, 1468)); err != nil {
				errs <- err
				return
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				errs <- io.ErrUnexpectedEOF
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFATImageReplaced(t *testing.T) {
	img := mtoolsImage(t, "16", 16384, nil)
	r := fatResolver(t, img)
	ctx := context.Background()
	old, err := r.Open(ctx, Request{Name: "5b154510/start4.elf"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// A new image version renamed over the old one, as a deploy does.
	next := filepath.Join(filepath.Dir(img), "next.vfat")
	run(t, "mkfs.vfat", "-F", "16", "-C", next, "16384")
	p := filepath.Join(t.TempDir(), "start4.elf")
	if err := os.WriteFile(p, []byte("start4 v2"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "mcopy", "-i", next, p, "::/start4.elf")
	if err := os.Rename(next, img); err != nil {
		t.Fatal(err)
	}
	got := resolveResult(t, r, Request{Name: "5b154510/start4.elf"})
	if diff := cmp.Diff(result{Content: "start4 v2", Node: "pi-fat", Path: "start4.elf"}, got); diff != "" {
		t.Errorf("after replacing the image (-want +got):\n%s", diff)
	}
	b, err := io.ReadAll(old.Content)
	if err != nil || string(b) != "start4 from FAT" {
		t.Errorf("file opened before the swap: %q, %v", b, err)
	}
}

func TestFATUnavailable(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.img")
	if err := os.WriteFile(garbage, randomBytes(7, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"garbage": garbage, "missing": filepath.Join(dir, "nope.img")} {
		t.Run(name, func(t *testing.T) {
			r := fatResolver(t, p)
			if got := resolveResult(t, r, Request{Name: "5b154510/start4.elf"}); got.Err != "unavailable" {
				t.Errorf("Open from a %s image: %+v, want unavailable", name, got)
			}
		})
	}
}

func TestExtentReader(t *testing.T) {
	img := randomBytes(3, 1<<16)
	ext := []extent{{off: 4096, n: 1000}, {off: 100, n: 1}, {off: 20000, n: 7000}, {off: 60000, n: 5536}}
	var want []byte
	for _, e := range ext {
		want = append(want, img[e.off:e.off+e.n]...)
	}
	size := int64(len(want)) - 36 // the last cluster is partly used
	want = want[:size]
	r := newExtentReader(bytes.NewReader(img), ext, size)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadAll: %d bytes, %v", len(got), err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		off := rng.Int64N(size + 5)
		buf := make([]byte, rng.IntN(9000))
		n, err := r.ReadAt(buf, off)
		wantN := int(min(int64(len(buf)), max(0, size-off)))
		if n != wantN || (n < len(buf) && err != io.EOF) || (n == len(buf) && err != nil) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v; want %d", len(buf), off, n, err, wantN)
		}
		if !bytes.Equal(buf[:n], want[min(off, size):min(off, size)+int64(n)]) {
			t.Fatalf("ReadAt(%d bytes, %d): wrong bytes", len(buf), off)
		}
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
	if pos, err := r.Seek(-10, io.SeekEnd); err != nil || pos != size-10 {
		t.Errorf("Seek(-10, end) = %d, %v", pos, err)
	}
}

func TestFATUpdateConcurrent(t *testing.T) {
	imgA := mtoolsImage(t, "16", 16384, nil)
	imgB := diskfsImage(t)
	cfgFor := func(img string) *rack.Config {
		return &rack.Config{Nodes: []rack.Node{{Name: "pi-fat", Kind: rack.KindRPi4, Serial: "5b154510", Boot: rack.Boot{FAT: img}}}}
	}
	r := New(inventory.New(cfgFor(imgA)), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 200 {
			r.Update(inventory.New(cfgFor([]string{imgA, imgB}[i%2])))
		}
		cancel()
	})
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for i := 0; i < 10_000 && ctx.Err() == nil; i++ {
				content, _, err := readAll(context.Background(), r, Request{Name: "5b154510/overlays/overlay_map.dtb"})
				if err != nil || content != "map" {
					errs <- fmt.Errorf("read %q: %v", content, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r.Update(inventory.New(&rack.Config{}))
	if n := len(r.fat.byPath); n != 0 {
		t.Errorf("%d images still cached after the config dropped them", n)
	}
}

// TestFATCycle patches a cluster chain into a loop: indexing must refuse the
// image, not follow the chain forever.
func TestFATCycle(t *testing.T) {
	img := mtoolsImage(t, "16", 16384, nil)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	g := parseBPB(b[:512])
	// Clusters 2 and 3 point at each other, in both FAT copies.
	for i := range g.fats {
		fat := (g.reserved + i*g.perFAT) * g.bps
		b[fat+4], b[fat+5], b[fat+6], b[fat+7] = 3, 0, 2, 0
	}
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := fatResolver(t, img).Open(context.Background(), Request{Name: "5b154510/start4.elf"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrSourceUnavailable) || !strings.Contains(err.Error(), "loops") {
			t.Errorf("Open from an image with a looping chain: %v, want ErrSourceUnavailable naming the loop", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("indexing an image with a looping cluster chain did not finish")
	}
}
