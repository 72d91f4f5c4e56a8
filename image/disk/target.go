package disk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrInUse means the flash target is a block device the running system
// uses: mounted, holding the running root file system, active swap, or
// under another device (LVM, dm-crypt, RAID) that is.
var ErrInUse = errors.New("device is in use by the running system")

// Target describes where Flash would write: a file, or a block device
// with what the kernel knows of it.
type Target struct {
	Path   string
	Device bool   // a block device (else a regular file, possibly not there yet)
	Name   string // kernel name of the whole disk (sdb, mmcblk0, loop3)
	Part   string // the partition named by Path, when it is one (sdb1)
	Model  string // vendor and model, or what stands for them
	Size   int64  // bytes of Path (the partition's, if it is one)
	// Removable is the kernel's removable flag of the disk.
	Removable bool
	// Uses lists why the system needs the disk: "/dev/sdb1 mounted at
	// /media/x", "holds the running root file system", "swap"; empty when
	// nothing does.
	Uses []string
}

// Describe is one line for the operator: path, model and size.
func (t Target) Describe() string {
	if !t.Device {
		return fmt.Sprintf("%s (a file)", t.Path)
	}
	name := t.Name
	if t.Part != "" {
		name = t.Part + ", a partition of " + t.Name
	}
	rem := ""
	if t.Removable {
		rem = ", removable"
	}
	return fmt.Sprintf("%s (%s): %s, %s%s", t.Path, name, t.Model, humanBytes(t.Size), rem)
}

// InUse returns an error wrapping ErrInUse that says why, or nil.
func (t Target) InUse() error {
	if len(t.Uses) == 0 {
		return nil
	}
	return fmt.Errorf("%w: refusing to write %s: %s", ErrInUse, t.Describe(), strings.Join(t.Uses, "; "))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// sysfs and procfs roots (tests do not move them; they are variables so
// that the reading code names its inputs).
var (
	sysBlock  = "/sys/dev/block"
	mountinfo = "/proc/self/mountinfo"
	swaps     = "/proc/swaps"
)

// Inspect describes path as a flash target. A path that does not exist or
// is a regular file is a file target; a block device is looked up in sysfs
// (model, size, partitions) and checked against mounts, the root file
// system and swap, following stacked devices (dm, md) both ways.
func Inspect(path string) (Target, error) {
	t := Target{Path: path}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return t, nil
		}
		return t, fmt.Errorf("inspect %s: %w", path, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		t.Size = st.Size
		return t, nil
	case unix.S_IFBLK:
	default:
		return t, fmt.Errorf("inspect %s: neither a block device nor a regular file", path)
	}
	t.Device = true
	sys, err := filepath.EvalSymlinks(filepath.Join(sysBlock, devID(st.Rdev)))
	if err != nil {
		return t, fmt.Errorf("inspect %s: find it in sysfs: %w", path, err)
	}
	disk := sys
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		disk = filepath.Dir(sys)
		t.Part = filepath.Base(sys)
	}
	t.Name = filepath.Base(disk)
	t.Size = readInt(filepath.Join(sys, "size")) * 512
	t.Removable = readInt(filepath.Join(disk, "removable")) == 1
	t.Model = model(disk)
	t.Uses, err = uses(disk)
	if err != nil {
		return t, fmt.Errorf("inspect %s: %w", path, err)
	}
	return t, nil
}

func devID(rdev uint64) string {
	return fmt.Sprintf("%d:%d", unix.Major(rdev), unix.Minor(rdev))
}

func readInt(p string) int64 {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func readText(p string) string {
	b, _ := os.ReadFile(p)
	return strings.Join(strings.Fields(string(b)), " ")
}

// model names the disk as its vendor and model, an SD card's name, or the
// backing file of a loop device.
func model(disk string) string {
	vendor, mdl := readText(filepath.Join(disk, "device", "vendor")), readText(filepath.Join(disk, "device", "model"))
	switch {
	case mdl != "":
		return strings.TrimSpace(vendor + " " + mdl)
	case readText(filepath.Join(disk, "device", "name")) != "":
		return "SD/MMC " + readText(filepath.Join(disk, "device", "name"))
	case readText(filepath.Join(disk, "loop", "backing_file")) != "":
		return "loop device backed by " + readText(filepath.Join(disk, "loop", "backing_file"))
	case vendor != "":
		return "model unknown, vendor " + vendor
	}
	return "model unknown"
}

// family returns the sysfs directories of a disk, its partitions and every
// device stacked on them (holders, recursively): writing the disk destroys
// all of them.
func family(disk string) []string {
	seen := map[string]bool{}
	var out []string
	var add func(d string, depth int)
	add = func(d string, depth int) {
		d, err := filepath.EvalSymlinks(d)
		if err != nil || seen[d] || depth > 16 {
			return
		}
		seen[d] = true
		out = append(out, d)
		holders, _ := os.ReadDir(filepath.Join(d, "holders"))
		for _, h := range holders {
			add(filepath.Join(d, "holders", h.Name()), depth+1)
		}
		if depth == 0 {
			parts, _ := os.ReadDir(d)
			for _, p := range parts {
				if _, err := os.Stat(filepath.Join(d, p.Name(), "partition")); err == nil {
					add(filepath.Join(d, p.Name()), depth+1)
				}
			}
		}
	}
	add(disk, 0)
	return out
}

// lower returns the sysfs directories of the whole disks a device sits on:
// itself when it is a disk, its disk when it is a partition, and through
// slaves (dm, md) down to the disks.
func lower(dev string, depth int) []string {
	dev, err := filepath.EvalSymlinks(dev)
	if err != nil || depth > 16 {
		return nil
	}
	slaves, _ := os.ReadDir(filepath.Join(dev, "slaves"))
	if len(slaves) > 0 {
		var out []string
		for _, s := range slaves {
			out = append(out, lower(filepath.Join(dev, "slaves", s.Name()), depth+1)...)
		}
		return out
	}
	if _, err := os.Stat(filepath.Join(dev, "partition")); err == nil {
		return []string{filepath.Dir(dev)}
	}
	return []string{dev}
}

// uses lists why the system needs a disk: mounts and swap on it or on
// anything stacked on it, and the running root file system on it.
func uses(disk string) ([]string, error) {
	ids := map[string]string{} // major:minor -> kernel name, for the disk's family
	for _, d := range family(disk) {
		if id := readText(filepath.Join(d, "dev")); id != "" {
			ids[id] = filepath.Base(d)
		}
	}
	var out []string
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		id, mnt := fields[2], unescapeMount(fields[4])
		// btrfs and others report an anonymous device number: the mount
		// source names the block device.
		for i, f := range fields {
			if f == "-" && i+2 < len(fields) {
				var st unix.Stat_t
				if unix.Stat(unescapeMount(fields[i+2]), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
					if _, ok := ids[id]; !ok {
						id = devID(st.Rdev)
					}
				}
				break
			}
		}
		if mnt == "/" {
			if n := rootDisk(id); n != "" && n == disk {
				out = append(out, "it holds the running root file system")
			}
		}
		if name, ok := ids[id]; ok {
			out = append(out, fmt.Sprintf("%s is mounted at %s", name, mnt))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	if b, err := os.ReadFile(swaps); err == nil {
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			var st unix.Stat_t
			if unix.Stat(fields[0], &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
				if name, ok := ids[devID(st.Rdev)]; ok {
					out = append(out, name+" is active swap")
				}
			}
		}
	}
	return out, nil
}

// rootDisk returns the sysfs directory of the (first) whole disk under the
// device id ("major:minor") of the root mount, "" when it has none (an
// overlay, a tmpfs).
func rootDisk(id string) string {
	d, err := filepath.EvalSymlinks(filepath.Join(sysBlock, id))
	if err != nil {
		return ""
	}
	if l := lower(d, 0); len(l) > 0 {
		r, _ := filepath.EvalSymlinks(l[0])
		return r
	}
	return ""
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
