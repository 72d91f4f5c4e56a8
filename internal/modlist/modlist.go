// Package modlist loads the kernel modules an initramfs lists, in order: the
// list format racklet's initramfs generator writes (image/initramfs) and
// racklet-agent reads as PID 1 — one absolute module file path per line, with
// dependencies and soft dependencies already first.
package modlist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Result says what Load did.
type Result struct {
	Loaded  int      // modules loaded now
	Present int      // modules the kernel had already (EEXIST)
	Skipped []string // modules for hardware this machine lacks (ENODEV)
}

// Load loads every module file named in the list at path, in order, through
// kmodule.FileInit (finit_module; compressed modules are decompressed
// first). A missing list is no modules. A module already loaded is fine; one
// whose hardware the machine lacks (ENODEV: crc32c_intel without SSE 4.2,
// a Pi driver under QEMU) is skipped and named in the result.
func Load(ctx context.Context, path string) (Result, error) {
	var r Result
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("read module list: %w", err)
	}
	for _, p := range strings.Fields(string(b)) {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		err := loadFile(p)
		switch {
		case err == nil:
			r.Loaded++
		case errors.Is(err, unix.EEXIST):
			r.Present++
		case errors.Is(err, unix.ENODEV):
			r.Skipped = append(r.Skipped, p)
		default:
			return r, fmt.Errorf("load module %s: %w", p, err)
		}
	}
	return r, nil
}

func loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return kmodule.FileInit(f, "", 0)
}
