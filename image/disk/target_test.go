package disk

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestFlashRefusesDevicesInUse uses a real loop device: described with its
// backing file and size, refused while a file system on it is mounted
// (Inspect and Flash both, and nothing is written), written once unmounted.
// The disk holding the running root is only inspected, never written:
// Inspect must say it holds the root file system.
func TestFlashRefusesDevicesInUse(t *testing.T) {
	dev := testutil.LoopDevice(t, 32<<20)
	mkfs := testutil.NeedTool(t, "mkfs.ext4")
	tg, err := Inspect(dev)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("target: %s", tg.Describe())
	if !tg.Device || tg.Size != 32<<20 || !strings.HasPrefix(tg.Model, "loop device backed by ") || len(tg.Uses) != 0 {
		t.Fatalf("Inspect(%s) = %+v", dev, tg)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", dev, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	mounted := true
	defer func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	}()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, []byte(strings.Repeat("racklet!", 512)), 0o644); err != nil {
		t.Fatal(err)
	}
	tg, err = Inspect(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.InUse(); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "mounted at "+mnt) {
		t.Errorf("InUse of a mounted device: %v", err)
	}
	if err := Flash(context.Background(), img, dev, nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("Flash onto a mounted device: %v, want ErrInUse", err)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v\n%s", err, out)
	}
	mounted = false
	if err := Flash(context.Background(), img, dev, nil); err != nil {
		t.Fatalf("Flash onto the unmounted device: %v", err)
	}
	got := make([]byte, 4096)
	f, _ := os.Open(dev)
	f.ReadAt(got, 0)
	f.Close()
	if string(got) != strings.Repeat("racklet!", 512) {
		t.Error("the device does not hold the image after Flash")
	}

	var root string
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/" {
			for i, x := range f {
				if x == "-" && i+2 < len(f) {
					root = f[i+2]
				}
			}
		}
	}
	if st, err := os.Stat(root); err != nil || st.Mode()&os.ModeDevice == 0 {
		t.Logf("the root file system is on %q, not a block device here: nothing more to check", root)
		return
	}
	rt, err := Inspect(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("root: %s: %v", rt.Describe(), rt.InUse())
	if err := rt.InUse(); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "running root file system") {
		t.Errorf("the root device %s is not refused as the root: %v", root, err)
	}
}
