package pisim

import (
	"bufio"
	"bytes"
	"strings"
)

// bootConfig is what the simulator needs from config.txt: which files the
// firmware goes on to load. Unset strings mean "the firmware default".
type bootConfig struct {
	Kernel      string   // kernel=
	Initramfs   string   // initramfs NAME [ADDR|followkernel]
	DeviceTree  string   // device_tree=
	Overlays    []string // dtoverlay=NAME[,params]
	Arm64       bool     // arm_64bit=1
	BootRamdisk bool     // boot_ramdisk=1
	Cmdline     string   // cmdline=
	StartFile   string   // start_file=
	FixupFile   string   // fixup_file=
	Includes    []string // include FILE, in order
}

// parseConfigTxt reads config.txt the forgiving way the firmware does:
// unknown keys and malformed lines are ignored. Section filters [all],
// [none], [piN]/[cmN]/[piN00] and [tryboot] are honoured for model; any other
// filter leaves the current state as it is.
func parseConfigTxt(data []byte, model int) bootConfig {
	var c bootConfig
	on := true
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			if end := strings.IndexByte(line, ']'); end > 0 {
				on = sectionApplies(strings.ToLower(line[1:end]), model, on)
			}
			continue
		}
		if !on {
			continue
		}
		if name, ok := strings.CutPrefix(line, "initramfs"); ok && len(name) > 0 && (name[0] == ' ' || name[0] == '\t') {
			if f := strings.Fields(name); len(f) > 0 {
				c.Initramfs = f[0]
			}
			continue
		}
		if name, ok := strings.CutPrefix(line, "include"); ok && len(name) > 0 && (name[0] == ' ' || name[0] == '\t') {
			if f := strings.TrimSpace(name); f != "" {
				c.Includes = append(c.Includes, f)
			}
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		switch key {
		case "kernel":
			c.Kernel = val
		case "device_tree":
			c.DeviceTree = val
		case "dtoverlay":
			if name, _, _ := strings.Cut(val, ","); name != "" {
				name, _, _ = strings.Cut(name, ":")
				c.Overlays = append(c.Overlays, name)
			}
		case "arm_64bit":
			c.Arm64 = val == "1"
		case "boot_ramdisk":
			c.BootRamdisk = val == "1"
		case "cmdline":
			c.Cmdline = val
		case "start_file":
			c.StartFile = val
		case "fixup_file":
			c.FixupFile = val
		}
	}
	return c
}

// sectionApplies returns whether lines after the filter [f] apply.
func sectionApplies(f string, model int, cur bool) bool {
	switch f {
	case "all":
		return true
	case "none", "tryboot":
		return false
	}
	for _, pre := range []string{"pi", "cm"} {
		if rest, ok := strings.CutPrefix(f, pre); ok && rest != "" && rest[0] >= '0' && rest[0] <= '9' {
			return rest[0] == byte('0'+model) && (len(rest) == 1 || rest[1:] == "00")
		}
	}
	return cur
}

// expandIncludes returns data with each "include FILE" line replaced by the
// text of FILE from files (one level, as the simulator reads them).
func expandIncludes(data []byte, files map[string][]byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "include"); ok && len(name) > 0 && (name[0] == ' ' || name[0] == '\t') {
			if inc, ok := files[strings.TrimSpace(name)]; ok {
				out.Write(inc)
				out.WriteByte('\n')
				continue
			}
		}
		out.WriteString(sc.Text())
		out.WriteByte('\n')
	}
	return out.Bytes()
}
