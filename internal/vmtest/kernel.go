// Package vmtest gives tests a real x86-64 Linux machine under QEMU (TCG):
// Debian's amd64 kernel and its modules (imagetest.DebianKernel: downloaded
// once with apt-get and cached), an initramfs written with u-root's cpio
// writer from the files a test chooses, static Go binaries built for it, and
// a bounded QEMU run whose serial console the test reads.
package vmtest

import (
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/image/imagetest"
)

// Kernel is an unpacked Debian kernel package.
type Kernel struct{ imagetest.Kernel }

// ModulesDir is Root/lib/modules/<Version>.
func (k Kernel) ModulesDir() string { return filepath.Join(k.Root, "lib", "modules", k.Version) }

// CacheDir is ${RACKLET_CACHE:-$HOME/.cache/racklet}.
func CacheDir() string { return imagetest.CacheDir() }

// DebianKernel returns Debian's current amd64 kernel with modules.dep (see
// imagetest.DebianKernel).
func DebianKernel(t testing.TB) Kernel { return Kernel{imagetest.DebianKernel(t)} }
