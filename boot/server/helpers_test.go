package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"

	"github.com/racklet/racklet-boot/rack"
)

// bootTree writes a small Pi 4 and Pi 5 boot tree under dir/name: the files
// the simulated bootloader needs, a config.txt loading kernel and
// initramfs, and a cmdline.txt whose text carries marker.
func bootTree(t *testing.T, dir, name, marker string) string {
	t.Helper()
	root := filepath.Join(dir, name)
	files := map[string]string{
		"start4.elf":          "start4 " + marker,
		"fixup4.dat":          "fixup4",
		"bcm2711-rpi-4-b.dtb": "dtb4",
		"bcm2712-rpi-5-b.dtb": "dtb5",
		"config.txt":          "[pi4]\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\n[pi5]\nkernel=kernel_2712.img\ninitramfs initramfs_2712 followkernel\n",
		"cmdline.txt":         "console=serial0 racklet.marker=" + marker + "\n",
		"kernel8.img":         strings.Repeat("k4"+marker, 4096),
		"initramfs8":          strings.Repeat("i4", 2048),
		"kernel_2712.img":     strings.Repeat("k5"+marker, 4096),
		"initramfs_2712":      strings.Repeat("i5", 2048),
	}
	for n, body := range files {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// parseConfig parses a rack config written under dir.
func parseConfig(t *testing.T, dir, text string) *rack.Config {
	t.Helper()
	path := filepath.Join(dir, "rack.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := rack.Parse([]byte(text), path)
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return cfg
}

// serve runs s until the test ends (then Run must return nil) and waits
// until it serves.
func serve(t *testing.T, s *Server) {
	t.Helper()
	early := make(chan error, 1)
	testutil.Serve(t, func(ctx context.Context) error { err := s.Run(ctx); early <- err; return err })
	select {
	case <-s.Ready():
	case err := <-early:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready within 30 s")
	}
}
