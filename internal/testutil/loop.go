package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// LoopDevice attaches a new zeroed file of size bytes to a free loop device
// and returns the device's path; the device is detached when the test
// ends. It needs root and losetup (util-linux).
func LoopDevice(t testing.TB, size int64) string {
	t.Helper()
	NeedRoot(t, "loop devices")
	losetup := NeedTool(t, "losetup")
	img := filepath.Join(t.TempDir(), "loop.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(losetup, "--find", "--show", img).CombinedOutput()
	if err != nil {
		Unavailable(t, "no free loop device: losetup: "+strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command(losetup, "--detach", dev).Run() })
	return dev
}
