package squashfs

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// TestKernelMountsImage mounts images of every compressor with the Linux squashfs driver
// (through a loop device) and checks contents, hard links, devices and xattrs. It needs root
// and a loop device; outside CI it skips without them.
func TestKernelMountsImage(t *testing.T) {
	mount := testutil.NeedTool(t, "mount")
	umount := testutil.NeedTool(t, "umount")
	testutil.NeedRoot(t, "the kernel mount test loop-mounts images")
	for _, comp := range []Compression{Zstd, XZ, Gzip} {
		t.Run(string(comp), func(t *testing.T) {
			tr := testTree(t, 700_000)
			img, _ := writeImage(t, tr, Options{Compression: comp, ModTime: 1})
			dir := t.TempDir()
			if out, err := exec.Command(mount, "-t", "squashfs", "-o", "loop,ro", img, dir).CombinedOutput(); err != nil {
				testutil.Unavailable(t, fmt.Sprintf("cannot loop-mount here: %v\n%s", err, out))
			}
			t.Cleanup(func() {
				if out, err := exec.Command(umount, dir).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v\n%s", dir, err, out)
				}
			})
			compareContents(t, tr, dir)
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, "bin/sh"), &st); err != nil || st.Nlink != 2 {
				t.Errorf("bin/sh: nlink %d, %v; want a hard link (2)", st.Nlink, err)
			}
			if err := unix.Lstat(filepath.Join(dir, "dev/sdb300"), &st); err != nil || unix.Major(st.Rdev) != 259 || unix.Minor(st.Rdev) != 300 {
				t.Errorf("dev/sdb300: %d,%d (%v), want 259,300", unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
			}
			buf := make([]byte, 64)
			if n, err := unix.Lgetxattr(filepath.Join(dir, "usr/bin/ping"), "user.note", buf); err != nil || string(buf[:n]) != "hi" {
				t.Errorf("user.note of usr/bin/ping: %q, %v", buf[:n], err)
			}
			if n, err := unix.Lgetxattr(filepath.Join(dir, "home/user"), "user.dir", buf); err != nil || string(buf[:n]) != "yes" {
				t.Errorf("user.dir of home/user: %q, %v", buf[:n], err)
			}
			if target, err := os.Readlink(filepath.Join(dir, "bin/ls")); err != nil || target != "busybox" {
				t.Errorf("bin/ls -> %q, %v", target, err)
			}
		})
	}
	t.Run("large directory", func(t *testing.T) {
		img, _ := writeImage(t, largeDirTree(t), Options{BlockSize: 4096})
		dir := t.TempDir()
		if out, err := exec.Command(mount, "-t", "squashfs", "-o", "loop,ro", img, dir).CombinedOutput(); err != nil {
			t.Fatalf("mount: %v\n%s", err, out)
		}
		defer exec.Command(umount, dir).Run()
		ents, err := os.ReadDir(filepath.Join(dir, "d"))
		if err != nil || len(ents) != largeDirEntries {
			t.Fatalf("kernel lists %d entries (%v), want %d", len(ents), err, largeDirEntries)
		}
		got, err := os.ReadFile(filepath.Join(dir, "d", ents[len(ents)-1].Name()))
		if err != nil || string(got) != fmt.Sprint(largeDirEntries-1) {
			t.Errorf("last file reads %q, %v", got, err)
		}
	})
}
