// Package pifw models how the Raspberry Pi 4/5 firmware chooses the
// partition it boots from a disk, written from Raspberry Pi's documentation
// of autoboot.txt and tryboot (config.txt and bootloader pages), and sharing
// no code with ab/disk, which writes what it reads. Tests boot their disks
// through it to decide whether a node would come up, and on what.
//
// The rules modelled:
//   - autoboot.txt is read from partition 1 (the first FAT partition), at
//     most 512 bytes; only the [all], [none] and [tryboot] filters apply in
//     it: [all] always, [none] never, [tryboot] only when the tryboot flag
//     is set; lines under any other filter are not applied. Later values win.
//   - boot_partition=N picks the partition, unless reboot was given a
//     partition ("reboot 3"); 0 or no value means the default partition,
//     modelled as partition 1.
//   - `reboot '0 tryboot'` sets a one-shot flag: the firmware clears it
//     before the OS starts, so the next boot after this one (a crash, a
//     watchdog reset, a reboot) is a normal boot. The flag is kept across a
//     reboot but not a power cut. The partition argument is one-shot too.
//   - With the flag set the firmware reads tryboot.txt instead of
//     config.txt, unless autoboot.txt sets tryboot_a_b=1: then it reads the
//     chosen partition's own config.txt.
package pifw

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxAutoboot is the largest autoboot.txt the firmware reads.
const MaxAutoboot = 512

// ErrAutoboot means the firmware would not read autoboot.txt as written.
var ErrAutoboot = errors.New("autoboot.txt unusable")

// Pi is one board's firmware state between boots.
type Pi struct {
	tryboot   bool // the one-shot tryboot flag
	partition int  // reboot's partition argument, one-shot
}

// Reboot is `reboot ARG`: "0 tryboot" sets the tryboot flag, "3" asks for
// partition 3 once, "" is a plain reboot.
func (p *Pi) Reboot(arg string) error {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return nil
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 || len(f) > 2 || len(f) == 2 && f[1] != "tryboot" {
		return fmt.Errorf("reboot argument %q: want a partition number, then optionally tryboot", arg)
	}
	p.partition, p.tryboot = n, len(f) == 2
	return nil
}

// PowerCut loses what the firmware kept across a reboot.
func (p *Pi) PowerCut() { *p = Pi{} }

// Tryboot reports whether the one-shot flag is set for the next boot.
func (p *Pi) Tryboot() bool { return p.tryboot }

// Boot is the firmware's choice for one boot.
type Boot struct {
	Partition int    // the partition it boots from
	Tryboot   bool   // the tryboot flag was set for this boot
	Config    string // the configuration file it reads there
}

// Boot chooses the partition for a boot. autoboot is partition 1's
// autoboot.txt, nil when it has none. The one-shot flags are cleared first,
// as the firmware does before the OS runs.
func (p *Pi) Boot(autoboot []byte) (Boot, error) {
	flags := *p
	*p = Pi{}
	b := Boot{Tryboot: flags.tryboot, Config: "config.txt"}
	part, ab := 0, false
	if autoboot != nil {
		if len(autoboot) > MaxAutoboot {
			return Boot{}, fmt.Errorf("%w: %d bytes, the firmware reads at most %d", ErrAutoboot, len(autoboot), MaxAutoboot)
		}
		props := properties(autoboot, flags.tryboot)
		if v, ok := props["boot_partition"]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return Boot{}, fmt.Errorf("%w: boot_partition=%q", ErrAutoboot, v)
			}
			part = n
		}
		ab = props["tryboot_a_b"] == "1"
	}
	if flags.partition != 0 {
		part = flags.partition
	}
	if part == 0 {
		part = 1
	}
	if flags.tryboot && !ab {
		b.Config = "tryboot.txt"
	}
	b.Partition = part
	return b, nil
}

// properties returns the name=value settings that apply, later ones winning.
func properties(text []byte, tryboot bool) map[string]string {
	out := map[string]string{}
	apply := true // before any filter: as [all]
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "":
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			switch strings.ToLower(line) {
			case "[all]":
				apply = true
			case "[tryboot]":
				apply = tryboot
			default: // [none], and filters autoboot.txt does not support
				apply = false
			}
		case apply:
			if k, v, ok := strings.Cut(line, "="); ok {
				out[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return out
}
