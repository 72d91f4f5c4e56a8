package resolve

import (
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// fatFiles is the tree every test FAT image holds.
var fatFiles = map[string]string{
	"start4.elf":               "start4 from FAT",
	"fixup4.dat":               "fixup4 from FAT",
	"config.txt.tmpl":          "# {{.Name}} from FAT\n",
	"Kernel8.img":              "kernel8 from FAT",
	"bcm2711-rpi-4-b.dtb":      "dtb",
	"overlays/overlay_map.dtb": "map",
	"overlays/a-very-long-overlay-name-for-tests.dtbo": "long overlay",
	"overlays/empty.dtbo":                              "",
	"a/b/c/d/deep.txt":                                 "deep file",
	"pieeprom.upd":                                     "eeprom",
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// mtoolsImage builds a FAT image with the real tools: mkfs.vfat -C, then
// mmd and mcopy. With big != nil, it first fills and frees small files so
// that big.bin ends up fragmented across several cluster runs.
func mtoolsImage(t testing.TB, fatBits string, sizeKiB int, big []byte) string {
	t.Helper()
	testutil.NeedTool(t, "mkfs.vfat")
	testutil.NeedTool(t, "mcopy")
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	dir := t.TempDir()
	img := filepath.Join(dir, "boot.vfat")
	run(t, "mkfs.vfat", "-F", fatBits, "-n", "RACKLET", "-C", img, strconv.Itoa(sizeKiB))
	src := filepath.Join(dir, "src")
	writeTree(t, src, fatFiles)
	if big != nil {
		// Fill most of the volume with 6 MiB pads and free every other one:
		// no free run is then as long as big.bin, so it is fragmented.
		for i := range 8 {
			p := filepath.Join(dir, "pad"+strconv.Itoa(i))
			if err := os.WriteFile(p, make([]byte, 6<<20), 0o644); err != nil {
				t.Fatal(err)
			}
			run(t, "mcopy", "-i", img, p, "::/pad"+strconv.Itoa(i))
		}
		for i := 0; i < 8; i += 2 {
			run(t, "mdel", "-i", img, "::/pad"+strconv.Itoa(i))
		}
		p := filepath.Join(dir, "big.bin")
		if err := os.WriteFile(p, big, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "mmd", "-i", img, "::/big")
		run(t, "mcopy", "-i", img, p, "::/big/initramfs.img")
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-i", img, "-s"}
	for _, e := range entries {
		args = append(args, filepath.Join(src, e.Name()))
	}
	run(t, "mcopy", append(args, "::/")...)
	return img
}

// mbrImage puts a FAT image into partition 1 of an MBR disk (sfdisk writes
// the table; the volume starts at 1 MiB).
func mbrImage(t testing.TB, vol string) string {
	t.Helper()
	testutil.NeedTool(t, "sfdisk")
	fat, err := os.ReadFile(vol)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	const start = 1 << 20
	size := int64(start + len(fat) + 1<<20)
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, size); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "table")
	spec := "label: dos\nstart=2048, size=" + strconv.Itoa(len(fat)/512) + ", type=c, bootable\n"
	if err := os.WriteFile(table, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(table)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := execCommand(t, "sfdisk", "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	f, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(fat, start); err != nil {
		t.Fatal(err)
	}
	return disk
}

// diskfsImage builds a FAT32 image with go-diskfs itself.
func diskfsImage(t testing.TB) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "diskfs.vfat")
	const size = 64 << 20
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	fsys, err := fat32.Create(file.New(f, false), size, 0, 512, "RACKLET", true)
	if err != nil {
		t.Fatalf("go-diskfs fat32.Create: %v", err)
	}
	names := make([]string, 0, len(fatFiles))
	for name := range fatFiles {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if d := path.Dir(name); d != "." {
			if err := fsys.Mkdir("/" + d); err != nil {
				t.Fatalf("mkdir %s: %v", d, err)
			}
		}
		w, err := fsys.OpenFile("/"+name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		if _, err := w.Write([]byte(fatFiles[name])); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		w.Close()
	}
	return img
}
