package disk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	abdisk "github.com/racklet/racklet-boot/ab/disk"
	"github.com/racklet/racklet-boot/ab/pifw"
	"github.com/racklet/racklet-boot/bootparams"
	imgdisk "github.com/racklet/racklet-boot/image/disk"
	"github.com/racklet/racklet-boot/image/verity"
	"github.com/racklet/racklet-boot/internal/testutil"
)

const diskID = 0x1234abcd

// The disk: a 64 MiB boot control partition (image/disk writes FAT32 there),
// 8 MiB boot and root slots.
var sizes = imgdisk.Sizes{Control: 64 << 20, Boot: 8 << 20, Root: 8 << 20, Data: 1 << 20}

// tools are the Debian tools the checks use.
type tools struct{ mkfs, mcopy, mtype, fsck, sfdisk string }

func needTools(t *testing.T) tools {
	return tools{testutil.NeedTool(t, "mkfs.vfat"), testutil.NeedTool(t, "mcopy"), testutil.NeedTool(t, "mtype"),
		testutil.NeedTool(t, "fsck.vfat"), testutil.NeedTool(t, "sfdisk")}
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// blob describes a file as a manifest pins it.
func blob(t *testing.T, path string) abdisk.Blob {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return abdisk.Blob{Path: path, Size: int64(len(b)), Digest: "sha256:" + hex.EncodeToString(sum[:])}
}

func random(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// mkImage makes a signed image's files: per slot a 4 MiB FAT boot partition
// (mkfs.vfat + mcopy) whose cmdline.txt names that slot's root partition, a
// 3 MiB root and its verity tree.
func mkImage(t *testing.T, tl tools, name string, seed int64, rootPart [2]int) abdisk.Image {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	os.MkdirAll(dir, 0o755)
	var img abdisk.Image
	for slot := range 2 {
		files := map[string][]byte{
			"config.txt":  []byte("arm_64bit=1\n# " + name + "\n"),
			"cmdline.txt": []byte("console=serial0,115200 " + bootparams.Params{RootDev: bootparams.PartUUID(diskID, rootPart[slot])}.String() + "\n"),
			"start4.elf":  random(seed, 1<<20),
			"kernel8.img": random(seed+1, 1<<20+12345),
		}
		p := filepath.Join(dir, fmt.Sprintf("boot-%c.vfat", 'a'+slot))
		run(t, tl.mkfs, "-C", "-n", "BOOT", "-i", fmt.Sprintf("%08x", seed), p, "4096")
		for n, b := range files {
			src := filepath.Join(dir, n)
			os.WriteFile(src, b, 0o644)
			run(t, tl.mcopy, "-i", p, src, "::"+n)
		}
		img.Boot[slot] = blob(t, p)
	}
	root := random(seed+2, 3<<20)
	rp, vp := filepath.Join(dir, "root.squashfs"), filepath.Join(dir, "root.verity")
	os.WriteFile(rp, root, 0o644)
	vf, _ := os.Create(vp)
	if _, err := verity.Build(context.Background(), bytes.NewReader(root), int64(len(root)), vf, verity.Options{Salt: []byte{byte(seed)}}); err != nil {
		t.Fatal(err)
	}
	vf.Close()
	img.Root, img.Verity, img.VerityOffset = blob(t, rp), blob(t, vp), imgdisk.VerityOffset(int64(len(root)))
	return img
}

// rig is a disk holding v1 in slot A, the images, and the checks.
type rig struct {
	t      *testing.T
	tl     tools
	disk   string
	v1, v2 abdisk.Image
	table  string // sfdisk -d of the fresh disk
}

func newRig(t *testing.T) *rig {
	tl := needTools(t)
	r := &rig{t: t, tl: tl, disk: filepath.Join(t.TempDir(), "disk.img")}
	r.v1 = mkImage(t, tl, "v1", 1, [2]int{5, 6})
	r.v2 = mkImage(t, tl, "v2", 2, [2]int{5, 6})
	in := imgdisk.Input{Boot: r.v1.Boot[0].Path, Root: r.v1.Root.Path, Verity: r.v1.Verity.Path}
	if _, err := imgdisk.Write(context.Background(), r.disk, in, imgdisk.Options{Sizes: sizes, DiskID: diskID, ControlSerial: 7, Epoch: 1700000000}); err != nil {
		t.Fatal(err)
	}
	r.table = string(run(t, tl.sfdisk, "-d", r.disk))
	return r
}

// extract copies a partition into its own (sparse) file.
func (r *rig) extract(disk string, p abdisk.Partition) string {
	r.t.Helper()
	f, err := os.Open(disk)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	out := filepath.Join(r.t.TempDir(), fmt.Sprintf("p%d", p.Number))
	o, _ := os.Create(out)
	defer o.Close()
	o.Truncate(p.Bytes())
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for off := int64(0); off < p.Bytes(); off += int64(len(buf)) {
		n, _ := f.ReadAt(buf, p.Offset()+off)
		if !bytes.Equal(buf[:n], zero[:n]) {
			o.WriteAt(buf[:n], off)
		}
	}
	return out
}

// digestAt hashes n bytes of the disk at off.
func digestAt(t *testing.T, disk string, off, n int64) string {
	f, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, io.NewSectionReader(f, off, n))
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// boots boots the disk through the firmware model and checks what it
// would run: the partition table as sfdisk reads it is the one written,
// the control partition passes fsck.vfat -n, the chosen boot partition
// passes fsck.vfat -n and holds, with its root partition, exactly one of
// the images. It returns that image's name and the slot.
func (r *rig) boots(disk string, pi *pifw.Pi, names map[string]abdisk.Image) (string, int) {
	r.t.Helper()
	if got := string(run(r.t, r.tl.sfdisk, "-d", disk)); strings.ReplaceAll(got, disk, "D") != strings.ReplaceAll(r.table, r.disk, "D") {
		r.t.Fatalf("partition table changed:\n%s\nwas:\n%s", got, r.table)
	}
	f, _ := os.Open(disk)
	fi, _ := f.Stat()
	table, err := abdisk.ReadTable(f, fi.Size())
	f.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	part := func(n int) abdisk.Partition { p, _ := table.Part(n); return p }
	ctl := r.extract(disk, part(1))
	if out, err := exec.Command(r.tl.fsck, "-n", ctl).CombinedOutput(); err != nil {
		r.t.Fatalf("fsck.vfat -n on the boot control partition: %v\n%s", err, out)
	}
	autoboot := run(r.t, r.tl.mtype, "-i", ctl, "::autoboot.txt")
	b, err := pi.Boot(autoboot)
	if err != nil {
		r.t.Fatal(err)
	}
	slot := map[int]int{2: 0, 3: 1}[b.Partition]
	if b.Partition != 2 && b.Partition != 3 {
		r.t.Fatalf("the firmware boots partition %d, not a boot slot", b.Partition)
	}
	if out, err := exec.Command(r.tl.fsck, "-n", r.extract(disk, part(b.Partition))).CombinedOutput(); err != nil {
		r.t.Fatalf("fsck.vfat -n on boot partition %d: %v\n%s", b.Partition, err, out)
	}
	root := part(5 + slot)
	for name, img := range names {
		if digestAt(r.t, disk, part(b.Partition).Offset(), img.Boot[slot].Size) == img.Boot[slot].Digest &&
			digestAt(r.t, disk, root.Offset(), img.Root.Size) == img.Root.Digest &&
			digestAt(r.t, disk, root.Offset()+img.VerityOffset, img.Verity.Size) == img.Verity.Digest {
			return name, slot
		}
	}
	r.t.Fatalf("the firmware boots partition %d, which holds none of the images whole", b.Partition)
	return "", 0
}

func (r *rig) both() map[string]abdisk.Image { return map[string]abdisk.Image{"v1": r.v1, "v2": r.v2} }

func TestUpdateTrybootCommit(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	var pi pifw.Pi
	if name, slot := r.boots(r.disk, &pi, r.both()); name != "v1" || slot != 0 {
		t.Fatalf("fresh disk boots %s in slot %d", name, slot)
	}
	slot, err := abdisk.WriteSlot(ctx, r.disk, r.v2, abdisk.Options{Chunk: 1 << 20})
	if err != nil || slot != 1 {
		t.Fatalf("WriteSlot = %d, %v; want slot B", slot, err)
	}
	if name, _ := r.boots(r.disk, &pi, r.both()); name != "v1" {
		t.Fatalf("a normal boot after writing slot B runs %s", name)
	}
	pi.Reboot("0 tryboot")
	if name, slot := r.boots(r.disk, &pi, r.both()); name != "v2" || slot != 1 {
		t.Fatalf("the tryboot runs %s in slot %d, want v2 in B", name, slot)
	}
	// The trial crashed: the next boot is the committed one.
	if name, _ := r.boots(r.disk, &pi, r.both()); name != "v1" {
		t.Fatalf("the boot after a failed trial runs %s", name)
	}
	if err := abdisk.Commit(ctx, r.disk, 2, abdisk.Options{}); err != nil {
		t.Fatalf("commit from the committed slot (nothing to do): %v", err)
	}
	pi.Reboot("0 tryboot")
	r.boots(r.disk, &pi, r.both())
	if err := abdisk.Commit(ctx, r.disk, 3, abdisk.Options{}); err != nil {
		t.Fatal(err)
	}
	if name, slot := r.boots(r.disk, &pi, r.both()); name != "v2" || slot != 1 {
		t.Fatalf("after commit a normal boot runs %s in slot %d", name, slot)
	}
	st, err := abdisk.Inspect(r.disk, abdisk.Options{})
	if err != nil || st.Committed != 1 || len(st.Autoboot) != len(imgdisk.Autoboot) {
		t.Fatalf("Inspect = committed %d, %d-byte autoboot.txt, %v", st.Committed, len(st.Autoboot), err)
	}
	// The next update goes to slot A.
	v3 := mkImage(t, r.tl, "v3", 3, [2]int{5, 6})
	if slot, err := abdisk.WriteSlot(ctx, r.disk, v3, abdisk.Options{}); err != nil || slot != 0 {
		t.Fatalf("second update: slot %d, %v", slot, err)
	}
	pi.Reboot("0 tryboot")
	if name, slot := r.boots(r.disk, &pi, map[string]abdisk.Image{"v2": r.v2, "v3": v3}); name != "v3" || slot != 0 {
		t.Fatalf("second tryboot runs %s in slot %d", name, slot)
	}
}

func TestWriteSlotRefuses(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	wrongDisk := mkImage(t, r.tl, "other-disk", 4, [2]int{5, 5}) // slot B's cmdline names root A
	if _, err := abdisk.WriteSlot(ctx, r.disk, wrongDisk, abdisk.Options{}); !errors.Is(err, abdisk.ErrWrongSlot) {
		t.Fatalf("boot image for the wrong root: %v, want ErrWrongSlot", err)
	}
	tampered := r.v2
	tampered.Root.Digest = "sha256:" + strings.Repeat("0", 64)
	if _, err := abdisk.WriteSlot(ctx, r.disk, tampered, abdisk.Options{}); !errors.Is(err, abdisk.ErrVerify) {
		t.Fatalf("root not matching its digest: %v, want ErrVerify", err)
	}
	if err := abdisk.Commit(ctx, r.disk, 4, abdisk.Options{}); err == nil {
		t.Fatal("commit from a partition that is no slot succeeded")
	}
	var pi pifw.Pi
	if name, _ := r.boots(r.disk, &pi, r.both()); name != "v1" {
		t.Fatalf("after refused updates the disk boots %s", name)
	}
}

func TestReadBootloader(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "proc/device-tree/chosen/bootloader")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "partition"), []byte{0, 0, 0, 3}, 0o644)
	os.WriteFile(filepath.Join(dir, "tryboot"), []byte{0, 0, 0, 1}, 0o644)
	b, err := abdisk.ReadBootloader(root)
	if err != nil || b != (abdisk.Bootloader{Partition: 3, Tryboot: true}) {
		t.Fatalf("ReadBootloader = %+v, %v", b, err)
	}
	os.WriteFile(filepath.Join(dir, "tryboot"), []byte{1}, 0o644)
	if _, err := abdisk.ReadBootloader(root); err == nil {
		t.Fatal("a one-byte cell was accepted")
	}
}

// jsonImage passes an image to the power-cut child.
func jsonImage(t *testing.T, img abdisk.Image) string {
	b, err := json.Marshal(img)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
