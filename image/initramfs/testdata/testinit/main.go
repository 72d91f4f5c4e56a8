// Command testinit is the /init of the initramfs boot test (not racklet-agent): it prints a
// marker, loads the modules /etc/racklet/modules lists with finit_module, in order, prints
// the result of each and what /proc/modules then holds, and powers the machine off.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	fmt.Println("RACKLET-TESTINIT-START")
	if err := unix.Mount("proc", "/proc", "proc", 0, ""); err != nil {
		fmt.Println("mount /proc:", err)
	}
	list, err := os.ReadFile("/etc/racklet/modules")
	if err != nil {
		fmt.Println("read module list:", err)
	}
	for _, p := range strings.Fields(string(list)) {
		fmt.Printf("module %s %s\n", p, load(p))
	}
	if f, err := os.Open("/proc/modules"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fmt.Println("loaded", strings.Fields(sc.Text())[0])
		}
		f.Close()
	}
	fmt.Println("RACKLET-TESTINIT-DONE")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

func load(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return "open: " + err.Error()
	}
	defer f.Close()
	switch err := unix.FinitModule(int(f.Fd()), "", 0); err {
	case nil:
		return "ok"
	case unix.ENODEV:
		return "ENODEV"
	case unix.EEXIST:
		return "EEXIST"
	default:
		return "error: " + err.Error()
	}
}
