package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// initramfsMarker is what the test initramfs prints on the serial console.
const initramfsMarker = "RACKLET-INITRAMFS-OK"

var (
	kernelOnce sync.Once
	kernelPath string
	kernelErr  error
)

// debianKernel returns the path of a Debian x86-64 kernel (vmlinuz), fetched
// once per machine with apt-get download and unpacked with dpkg-deb.
func debianKernel(t *testing.T) string {
	t.Helper()
	kernelOnce.Do(func() {
		cache := filepath.Join(os.TempDir(), "racklet-it-kernel")
		if m, _ := filepath.Glob(filepath.Join(cache, "boot", "vmlinuz-*")); len(m) > 0 {
			kernelPath = m[0]
			return
		}
		out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
		if err != nil {
			kernelErr = fmt.Errorf("apt-cache depends linux-image-amd64: %w", err)
			return
		}
		pkg := ""
		for _, l := range strings.Split(string(out), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
				pkg = f[1]
			}
		}
		if pkg == "" {
			kernelErr = fmt.Errorf("no kernel package behind linux-image-amd64 (run apt-get update): %s", out)
			return
		}
		dl := filepath.Join(cache, "deb")
		if err := os.MkdirAll(dl, 0o755); err != nil {
			kernelErr = err
			return
		}
		cmd := exec.Command("apt-get", "download", pkg)
		cmd.Dir = dl
		if out, err := cmd.CombinedOutput(); err != nil {
			kernelErr = fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
			return
		}
		debs, _ := filepath.Glob(filepath.Join(dl, pkg+"_*.deb"))
		if len(debs) == 0 {
			kernelErr = fmt.Errorf("apt-get download %s left no .deb in %s", pkg, dl)
			return
		}
		if out, err := exec.Command("dpkg-deb", "-x", debs[0], cache).CombinedOutput(); err != nil {
			kernelErr = fmt.Errorf("dpkg-deb -x: %w: %s", err, out)
			return
		}
		m, _ := filepath.Glob(filepath.Join(cache, "boot", "vmlinuz-*"))
		if len(m) == 0 {
			kernelErr = fmt.Errorf("no vmlinuz in %s", debs[0])
			return
		}
		kernelPath = m[0]
	})
	if kernelErr != nil {
		t.Fatal(kernelErr)
	}
	return kernelPath
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
