package image

import (
	"testing"

	"github.com/racklet/racklet-boot/image/flatten"
)

// TestSystemdInit: which roots get the systemd health unit and which the
// init.d script (busybox init, as in the small Debian base).
func TestSystemdInit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		links map[string]string // symlinks in the root
		want  bool
	}{
		{"no init: systemd by default", nil, true},
		{"systemd-sysv, merged /usr", map[string]string{"sbin": "usr/sbin", "usr/sbin/init": "../lib/systemd/systemd"}, true},
		{"systemd-sysv, split /usr", map[string]string{"sbin/init": "/lib/systemd/systemd"}, true},
		{"busybox init", map[string]string{"sbin/init": "/bin/busybox"}, false},
		{"busybox init, merged /usr", map[string]string{"sbin": "usr/sbin", "usr/sbin/init": "/bin/busybox"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := flatten.NewBuilder(flatten.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Tree().Close()
			for name, target := range tc.links {
				if err := b.AddSymlink(name, target); err != nil {
					t.Fatal(err)
				}
			}
			if got := systemdInit(b.Tree()); got != tc.want {
				t.Errorf("systemdInit = %v, want %v", got, tc.want)
			}
		})
	}
}
