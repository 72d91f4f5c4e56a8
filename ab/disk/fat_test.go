package disk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/image/fat"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// fatFiles are the files every test volume holds.
var fatFiles = map[string][]byte{
	"autoboot.txt": []byte("[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n"),
	"cmdline.txt":  []byte("console=serial0 racklet.rootdev=PARTUUID=1234abcd-05\n"),
	"kernel8.img":  func() []byte { b := make([]byte, 300<<10+7); rand.New(rand.NewSource(1)).Read(b); return b }(),
}

// fatVolumes makes the same files as a FAT32 volume with long names
// (image/fat, whose 8.3 aliases are AUTOBO~1.TXT), and as FAT12 and FAT16
// volumes with plain 8.3 names (mkfs.vfat and mcopy).
func fatVolumes(t testing.TB) map[string][]byte {
	dir := t.TempDir()
	out := map[string][]byte{}
	var files []fat.File
	for name, b := range fatFiles {
		files = append(files, fat.File{Path: name, Size: int64(len(b)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	p := filepath.Join(dir, "fat32.vfat")
	if err := fat.Write(context.Background(), p, files, fat.Options{Serial: 3}); err != nil {
		t.Fatal(err)
	}
	out["fat32 long names"], _ = os.ReadFile(p)
	mkfs, mcopy := testutil.NeedTool(t, "mkfs.vfat"), testutil.NeedTool(t, "mcopy")
	for _, v := range []struct{ name, bits, kib string }{{"fat12", "12", "1024"}, {"fat16", "16", "20480"}} {
		p := filepath.Join(dir, v.name)
		if out, err := exec.Command(mkfs, "-C", "-F", v.bits, p, v.kib).CombinedOutput(); err != nil {
			t.Fatalf("mkfs.vfat: %v\n%s", err, out)
		}
		for name, b := range fatFiles {
			src := filepath.Join(dir, name)
			os.WriteFile(src, b, 0o644)
			if out, err := exec.Command(mcopy, "-i", p, src, "::"+strings.ToUpper(name)).CombinedOutput(); err != nil {
				t.Fatalf("mcopy: %v\n%s", err, out)
			}
		}
		out[v.name], _ = os.ReadFile(p)
	}
	return out
}

func TestReadFAT(t *testing.T) {
	for vol, img := range fatVolumes(t) {
		t.Run(vol, func(t *testing.T) {
			r := bytes.NewReader(img)
			for name, want := range fatFiles {
				got, err := readFAT(r, 0, int64(len(img)), name, 1<<20)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
				}
			}
			if _, err := readFAT(r, 0, int64(len(img)), "config.txt", 1<<20); !errors.Is(err, ErrFAT) {
				t.Errorf("missing file: %v", err)
			}
			if _, err := readFAT(r, 0, int64(len(img)), "kernel8.img", 4096); !errors.Is(err, ErrFAT) {
				t.Errorf("file over the limit: %v", err)
			}
			if _, err := readFAT(r, 0, int64(len(img))/2, "cmdline.txt", 4096); !errors.Is(err, ErrFAT) {
				t.Errorf("volume larger than its partition: %v", err)
			}
		})
	}
}

// padded reads as its bytes followed by zeros up to size: a fuzzed volume
// prefix stands for a whole partition.
type padded struct {
	b    []byte
	size int64
}

func (p padded) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(b)) > p.size {
		return 0, io.EOF
	}
	clear(b)
	if off < int64(len(p.b)) {
		copy(b, p.b[off:])
	}
	return len(b), nil
}

func FuzzReadFAT(f *testing.F) {
	for _, img := range fatVolumes(f) {
		f.Add(img[:min(len(img), 32<<10)])
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		for _, name := range []string{"autoboot.txt", "cmdline.txt"} {
			b, err := readFAT(padded{img, 1 << 20}, 0, 1<<20, name, 4096)
			if err == nil && len(b) > 4096 {
				t.Fatalf("%s: %d bytes past the limit", name, len(b))
			}
		}
	})
}

func TestAutoboot(t *testing.T) {
	b, err := Autoboot(3, 2, 80)
	if err != nil || len(b) != 80 {
		t.Fatalf("Autoboot padded = %d bytes, %v", len(b), err)
	}
	c, tr, err := parseAutoboot(b)
	if err != nil || c != 3 || tr != 2 {
		t.Fatalf("parse = %d, %d, %v", c, tr, err)
	}
	if _, err := Autoboot(2, 3, 20); err == nil {
		t.Error("a file too small for the content was accepted")
	}
	for _, bad := range []string{
		"boot_partition=2\n",                    // outside a section
		"[all]\nboot_partition=2\n",             // no [tryboot]
		"[all]\nboot_partition=2\n[pi4]\nx=1\n", // a section this agent does not write
		"[all]\nboot_partition=2\n[tryboot]\nboot_partition=2\n",
	} {
		if _, _, err := parseAutoboot([]byte(bad)); err == nil {
			t.Errorf("parseAutoboot(%q) accepted", bad)
		}
	}
}
