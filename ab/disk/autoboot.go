package disk

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// AutobootMax is the largest autoboot.txt the firmware reads, and the most
// Commit can rewrite in one sector.
const AutobootMax = 512

// Autoboot renders autoboot.txt for an A/B disk: boot partition committed
// normally, trial when the one-shot tryboot flag is set; tryboot_a_b=1 makes
// the trial partition's own config.txt apply (not tryboot.txt). With size > 0
// the file is padded with newlines to exactly size bytes, so a rewrite keeps
// the file's length (and its directory entry) unchanged.
func Autoboot(committed, trial, size int) ([]byte, error) {
	b := []byte(fmt.Sprintf("[all]\ntryboot_a_b=1\nboot_partition=%d\n[tryboot]\nboot_partition=%d\n", committed, trial))
	if size > 0 {
		if len(b) > size {
			return nil, fmt.Errorf("autoboot.txt needs %d bytes, the file has %d", len(b), size)
		}
		b = append(b, bytes.Repeat([]byte{'\n'}, size-len(b))...)
	}
	return b, nil
}

// parseAutoboot reads back what Autoboot wrote: the [all] and [tryboot]
// boot partitions. It is not a model of the firmware (ab/pifw is): it
// refuses any file it did not write, rather than guess.
func parseAutoboot(b []byte) (committed, trial int, err error) {
	section := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case line == "[all]" || line == "[tryboot]":
			section = line
		case line == "tryboot_a_b=1" && section == "[all]":
		case strings.HasPrefix(line, "boot_partition="):
			n, perr := strconv.Atoi(strings.TrimPrefix(line, "boot_partition="))
			if perr != nil || n < 1 {
				return 0, 0, fmt.Errorf("autoboot.txt: %q", line)
			}
			switch section {
			case "[all]":
				committed = n
			case "[tryboot]":
				trial = n
			default:
				return 0, 0, fmt.Errorf("autoboot.txt: boot_partition outside [all] and [tryboot]")
			}
		default:
			return 0, 0, fmt.Errorf("autoboot.txt: %q is not an A/B line this agent writes", line)
		}
	}
	if committed == 0 || trial == 0 || committed == trial {
		return 0, 0, fmt.Errorf("autoboot.txt names no A/B pair ([all] %d, [tryboot] %d)", committed, trial)
	}
	return committed, trial, nil
}
