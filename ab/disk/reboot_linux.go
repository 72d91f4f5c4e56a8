package disk

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// RebootTryboot syncs and reboots the node with the argument "0 tryboot", as
// `reboot '0 tryboot'` does: the firmware boots autoboot.txt's [tryboot]
// section once. It returns only on failure.
func RebootTryboot() error {
	unix.Sync()
	arg, err := unix.BytePtrFromString("0 tryboot")
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_REBOOT, unix.LINUX_REBOOT_MAGIC1, unix.LINUX_REBOOT_MAGIC2,
		unix.LINUX_REBOOT_CMD_RESTART2, uintptr(unsafe.Pointer(arg)), 0, 0)
	return fmt.Errorf("reboot with tryboot: %w", errno)
}
