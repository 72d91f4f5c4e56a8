package disk

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
)

// Bootloader is what the Pi firmware tells the OS about this boot through
// the device tree (/proc/device-tree/chosen/bootloader).
type Bootloader struct {
	Partition int  // the partition the firmware booted from
	Tryboot   bool // the one-shot tryboot flag was set for this boot
}

// ReadBootloader reads the firmware's chosen/bootloader node under root
// ("/" on a node; a directory in tests). Both properties are big-endian
// 32-bit cells.
func ReadBootloader(root string) (Bootloader, error) {
	dir := filepath.Join(root, "proc/device-tree/chosen/bootloader")
	cell := func(name string) (uint32, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return 0, fmt.Errorf("read the firmware's boot facts: %w", err)
		}
		if len(b) != 4 {
			return 0, fmt.Errorf("firmware property %s is %d bytes, want a 32-bit cell", name, len(b))
		}
		return binary.BigEndian.Uint32(b), nil
	}
	p, err := cell("partition")
	if err != nil {
		return Bootloader{}, err
	}
	t, err := cell("tryboot")
	if err != nil {
		return Bootloader{}, err
	}
	return Bootloader{Partition: int(p), Tryboot: t != 0}, nil
}
