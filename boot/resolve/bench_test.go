package resolve

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/inventory"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/racklet/racklet-boot/rack"
)

// readSizes are the read sizes servers use: a TFTP block at the Pi's
// blksize and an HTTP copy buffer.
var readSizes = []struct {
	name string
	n    int
}{{"tftp-1468", 1468}, {"http-32k", 32 << 10}}

// benchOpenRead opens and reads a whole file per iteration.
func benchOpenRead(b *testing.B, r *Resolver, req Request, size int) {
	ctx := context.Background()
	for _, rs := range readSizes {
		b.Run(rs.name, func(b *testing.B) {
			buf := make([]byte, rs.n)
			b.SetBytes(int64(size))
			for b.Loop() {
				f, err := r.Open(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f.Content}, buf)
				f.Close()
				if err != nil || n != int64(size) {
					b.Fatalf("read %d of %d bytes: %v", n, size, err)
				}
			}
		})
	}
}

func BenchmarkOpenReadDir(b *testing.B) {
	dir := b.TempDir()
	big := randomBytes(42, 20<<20)
	writeTree(b, filepath.Join(dir, "rpi"), map[string]string{"big/initramfs.img": string(big)})
	r := New(inventory.New(&rack.Config{Nodes: []rack.Node{{Name: "pi", Serial: "5b154510", Boot: rack.Boot{Dir: filepath.Join(dir, "rpi")}}}}), Options{})
	benchOpenRead(b, r, Request{Name: "5b154510/big/initramfs.img"}, len(big))
}

func BenchmarkOpenReadFAT(b *testing.B) {
	img, big := bigFATImage(b)
	benchOpenRead(b, fatResolver(b, img), Request{Name: "5b154510/big/initramfs.img"}, len(big))
}

// BenchmarkDiskfsReadFAT reads the same file with go-diskfs's own File.Read,
// the alternative to the extent index, for comparison.
func BenchmarkDiskfsReadFAT(b *testing.B) {
	img, big := bigFATImage(b)
	for _, rs := range readSizes {
		b.Run(rs.name, func(b *testing.B) {
			buf := make([]byte, rs.n)
			b.SetBytes(int64(len(big)))
			for b.Loop() {
				f, err := os.Open(img)
				if err != nil {
					b.Fatal(err)
				}
				d, err := diskfs.OpenBackend(file.New(f, true))
				if err != nil {
					b.Fatal(err)
				}
				fsys, err := d.GetFilesystem(0)
				if err != nil {
					b.Fatal(err)
				}
				ff, err := fsys.OpenFile("big/initramfs.img", os.O_RDONLY)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{ff}, buf)
				f.Close()
				if err != nil || n != int64(len(big)) {
					b.Fatalf("read %d of %d bytes: %v", n, len(big), err)
				}
			}
		})
	}
}

// BenchmarkOpenProbe is the cost of a miss, the answer to most of a Pi's
// existence probes.
func BenchmarkOpenProbe(b *testing.B) {
	img := mtoolsImage(b, "32", 65536, nil)
	dir := b.TempDir()
	writeTree(b, dir, fatFiles)
	for name, boot := range map[string]rack.Boot{"dir": {Dir: dir}, "fat": {FAT: img}} {
		b.Run(name, func(b *testing.B) {
			r := New(inventory.New(&rack.Config{Nodes: []rack.Node{{Name: "pi", Serial: "5b154510", Boot: boot}}}), Options{})
			ctx := context.Background()
			for b.Loop() {
				if _, err := r.Open(ctx, Request{Name: "5b154510/recovery.elf"}); err == nil {
					b.Fatal("found recovery.elf")
				}
			}
		})
	}
}
