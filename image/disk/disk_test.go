package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"

	"github.com/racklet/racklet-boot/image/fat"
	"github.com/racklet/racklet-boot/image/verity"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// inputs makes a boot FAT, a fake root image and its verity tree.
func inputs(t *testing.T, rootBytes int) (Input, *verity.Result) {
	t.Helper()
	dir := t.TempDir()
	in := Input{Boot: filepath.Join(dir, "boot.vfat"), Root: filepath.Join(dir, "root.squashfs"), Verity: filepath.Join(dir, "root.verity")}
	cfg := []byte("arm_64bit=1\n")
	if err := fat.Write(context.Background(), in.Boot, []fat.File{{Path: "config.txt", Size: int64(len(cfg)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(cfg)), nil }}}, fat.Options{Serial: 1}); err != nil {
		t.Fatal(err)
	}
	root := make([]byte, rootBytes)
	rand.New(rand.NewSource(3)).Read(root)
	os.WriteFile(in.Root, root, 0o644)
	vf, _ := os.Create(in.Verity)
	defer vf.Close()
	res, err := verity.Build(context.Background(), bytes.NewReader(root), int64(len(root)), vf, verity.Options{Salt: []byte{1, 2, 3}})
	if err != nil {
		t.Fatal(err)
	}
	return in, res
}

var small = Sizes{Control: 64 << 20, Boot: 80 << 20, Root: 8 << 20, Data: 4 << 20}

func TestSfdiskReadsLayout(t *testing.T) {
	sfdisk := testutil.NeedTool(t, "sfdisk")
	in, _ := inputs(t, 1<<20)
	dst := filepath.Join(t.TempDir(), "disk.img")
	l, err := Write(context.Background(), dst, in, Options{Sizes: small, DiskID: 0x1234abcd, Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sfdisk, "-d", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk -d: %v\n%s", err, out)
	}
	var got []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, dst) || strings.HasPrefix(line, "label-id") {
			got = append(got, strings.Join(strings.Fields(strings.TrimPrefix(line, dst)), " "))
		}
	}
	want := []string{"label-id: 0x1234abcd"}
	for _, p := range append(l.Partitions[:3:3], append([]Partition{l.Extended}, l.Partitions[3:]...)...) {
		want = append(want, fmt.Sprintf("%d : start= %d, size= %d, type=%x", p.Number, p.Start, p.Size, p.Type))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sfdisk -d (-want +got):\n%s\nfull output:\n%s", diff, out)
	}
}

// extract copies partition n of the disk into its own file.
func extract(t *testing.T, disk string, p Partition) string {
	t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := filepath.Join(t.TempDir(), p.Name)
	o, _ := os.Create(out)
	defer o.Close()
	if _, err := io.Copy(o, io.NewSectionReader(f, p.Start*sector, p.Size*sector)); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPartitionsHoldImages(t *testing.T) {
	vs := testutil.NeedTool(t, "veritysetup")
	fsck := testutil.NeedTool(t, "fsck.vfat")
	mcopy := testutil.NeedTool(t, "mcopy")
	in, res := inputs(t, 3<<20)
	dst := filepath.Join(t.TempDir(), "disk.img")
	in.CopyB = true
	l, err := Write(context.Background(), dst, in, Options{Sizes: small, ControlSerial: 9, Epoch: 1700000000})
	if err != nil {
		t.Fatal(err)
	}
	ctl := extract(t, dst, l.Part(1))
	if out, err := exec.Command(fsck, "-n", ctl).CombinedOutput(); err != nil {
		t.Fatalf("fsck.vfat -n on boot control: %v\n%s", err, out)
	}
	got, err := exec.Command(mcopy, "-n", "-i", ctl, "::autoboot.txt", "-").Output()
	if err != nil || string(got) != Autoboot {
		t.Errorf("autoboot.txt = %q, %v; want %q", got, err, Autoboot)
	}
	for _, n := range []int{2, 3} {
		if out, err := exec.Command(fsck, "-n", extract(t, dst, l.Part(n))).CombinedOutput(); err != nil {
			t.Errorf("fsck.vfat -n on partition %d: %v\n%s", n, err, out)
		}
	}
	off := fmt.Sprint(VerityOffset(3 << 20))
	for _, n := range []int{5, 6} {
		part := extract(t, dst, l.Part(n))
		if out, err := exec.Command(vs, "verify", "--hash-offset="+off, "--data-blocks=768", part, part, res.RootHashHex()).CombinedOutput(); err != nil {
			t.Errorf("veritysetup verify on partition %d: %v\n%s", n, err, out)
		}
	}
}

func TestWriteRefusesOversizedRoot(t *testing.T) {
	in, _ := inputs(t, 8<<20)
	dst := filepath.Join(t.TempDir(), "disk.img")
	_, err := Write(context.Background(), dst, in, Options{Sizes: small})
	if !errors.Is(err, ErrSlotTooSmall) {
		t.Fatalf("error %v, want ErrSlotTooSmall", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("disk image left behind: %v", err)
	}
	if _, err := os.Stat(dst + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary disk image left behind: %v", err)
	}
}

func TestFlashReadsBack(t *testing.T) {
	dir := t.TempDir()
	img := make([]byte, 9<<20+123)
	rand.New(rand.NewSource(5)).Read(img[:1<<20])
	raw := filepath.Join(dir, "disk.img")
	os.WriteFile(raw, img, 0o644)
	enc, _ := zstd.NewWriter(nil)
	zst := filepath.Join(dir, "disk.img.zst")
	os.WriteFile(zst, enc.EncodeAll(img, nil), 0o644)
	for name, src := range map[string]string{"raw": raw, "zstd": zst} {
		t.Run(name, func(t *testing.T) {
			dev := filepath.Join(t.TempDir(), "dev")
			var last int64
			if err := Flash(context.Background(), src, dev, func(done, total int64) { last = done }); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dev)
			if !bytes.Equal(got, img) {
				t.Errorf("device content differs from the image")
			}
			if last != int64(len(img)) {
				t.Errorf("progress ended at %d, want %d", last, len(img))
			}
		})
	}
}
