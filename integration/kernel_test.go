package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/image/imagetest"
)

// initramfsMarker is what the test initramfs prints on the serial console.
const initramfsMarker = "RACKLET-INITRAMFS-OK"

// debianKernel returns the path of a Debian x86-64 kernel (vmlinuz), fetched and unpacked
// once per machine by imagetest.DebianKernel.
func debianKernel(t *testing.T) string {
	t.Helper()
	return imagetest.DebianKernel(t).Vmlinuz
}

// busyboxInitramfs builds a gzip'd newc initramfs whose /init prints the
// marker on the serial console and powers the machine off.
func busyboxInitramfs(t *testing.T, out string) {
	t.Helper()
	busyboxInitramfsWith(t, out, "echo "+initramfsMarker+"\n/bin/busybox poweroff -f\n")
}

// busyboxInitramfsWith writes a busybox initramfs whose /init mounts
// devtmpfs, sends its output to the serial console and runs script.
func busyboxInitramfsWith(t *testing.T, out, script string) {
	t.Helper()
	root := t.TempDir()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "dev", "proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(bb); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "sh")); err != nil {
		t.Fatal(err)
	}
	init := "#!/bin/sh\n" +
		"/bin/busybox mount -t devtmpfs dev /dev\n" +
		"exec >/dev/ttyS0 2>&1\n" + script
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(init), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet | gzip -1 > "+out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build initramfs: %v: %s", err, b)
	}
}
