package fat

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"
)

func memFile(p string, body []byte) File {
	return File{Path: p, Size: int64(len(body)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }}
}

func bootFiles() []File {
	kernel := bytes.Repeat([]byte("kernel8"), 300_000)
	return []File{
		memFile("start4.elf", bytes.Repeat([]byte{0xe1}, 2_000_000)),
		memFile("fixup4.dat", []byte("fixup")),
		memFile("kernel8.img", kernel),
		memFile("bcm2711-rpi-4-b.dtb", []byte("dtb")),
		memFile("overlays/vc4-kms-v3d.dtbo", []byte("overlay")),
		memFile("overlays/README", []byte("readme")),
		memFile("config.txt", []byte("arm_64bit=1\n")),
		memFile("cmdline.txt", []byte("console=serial0,115200 root=/dev/mmcblk0p5\n")),
	}
}

func TestFsckAndMtoolsReadVolume(t *testing.T) {
	fsck := testutil.NeedTool(t, "fsck.vfat")
	mcopy := testutil.NeedTool(t, "mcopy")
	dst := filepath.Join(t.TempDir(), "boot.vfat")
	if err := Write(context.Background(), dst, bootFiles(), Options{Serial: 0xdeadbeef, Epoch: 1700000000}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(fsck, "-n", "-v", dst).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "0xdeadbeef") && !strings.Contains(strings.ToLower(string(out)), "deadbeef") {
		t.Logf("fsck.vfat output:\n%s", out)
	}
	for _, f := range bootFiles() {
		got, err := exec.Command(mcopy, "-n", "-i", dst, "::"+f.Path, "-").Output()
		if err != nil {
			t.Fatalf("mcopy %s: %v", f.Path, err)
		}
		rc, _ := f.Open()
		want, _ := io.ReadAll(rc)
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s: mcopy read %d bytes, want %d", f.Path, len(got), len(want))
		}
	}
	minfo, err := exec.Command("minfo", "-i", dst, "::").CombinedOutput()
	if err == nil && !strings.Contains(string(minfo), "serial number: DEADBEEF") {
		t.Errorf("volume serial not DEADBEEF:\n%s", minfo)
	}
}

func TestWriteIsReproducible(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := Write(context.Background(), p, bootFiles(), Options{Serial: 7, Epoch: 1600000000}); err != nil {
			t.Fatal(err)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Error("two writes of the same files differ")
	}
}

func TestWriteTooSmall(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "boot.vfat")
	err := Write(context.Background(), dst, bootFiles(), Options{Size: 2 << 20})
	if !errors.Is(err, ErrTooSmall) {
		t.Fatalf("error %v, want ErrTooSmall", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("half-written volume left behind: %v", err)
	}
}
