//go:build linux

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"github.com/u-root/u-root/pkg/mount/loop"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/internal/devmapper"
	"github.com/racklet/racklet-boot/internal/modlist"
)

// Paths on a node.
const (
	// ModulesList names the modules the initramfs's init loads, one per
	// line, in order (the initramfs generator writes it; dependencies come
	// from /lib/modules/<kver>/modules.dep).
	ModulesList = "/etc/racklet/modules"
	// InitrdFile is the loaded initramfs as newer kernels keep it readable
	// under retain_initrd (Debian 12's 6.1 does not: see loadedInitrdDigest).
	InitrdFile = "/sys/firmware/initrd"
	// DefaultHAT is the HAT link under QEMU: a virtio-serial port named
	// racklet.hat (udev's name; the agent finds it through sysfs without udev).
	DefaultHAT = "/dev/virtio-ports/racklet.hat"
	// VerityName is the device-mapper name of the verified root.
	VerityName = "racklet-root"
	// DHCPTimeout bounds getting a lease on one interface.
	DHCPTimeout = 60 * time.Second
)

// Linux is the Machine of a real node (PID 1 in racklet's initramfs).
type Linux struct {
	Log *slog.Logger
}

var _ Machine = (*Linux)(nil)

// MountPseudo implements Machine.
func (l *Linux) MountPseudo() error {
	for _, m := range []struct {
		dir, fs string
		flags   uintptr
		data    string
	}{
		{"/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fs, m.dir, m.fs, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fs, m.dir, err)
		}
	}
	// Without /dev/console in the archive the kernel gave init no standard
	// streams; now devtmpfs has it.
	if c, err := os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
		for fd := 0; fd <= 2; fd++ {
			unix.Dup3(int(c.Fd()), fd, 0)
		}
		c.Close()
	}
	return nil
}

// Cmdline implements Machine.
func (l *Linux) Cmdline() (string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	return strings.TrimSpace(string(b)), err
}

// LoadModules implements Machine: the modules ModulesList names, in its
// order (package modlist). One whose hardware this machine lacks is logged
// and skipped.
func (l *Linux) LoadModules(ctx context.Context) error {
	r, err := modlist.Load(ctx, ModulesList)
	for _, p := range r.Skipped {
		logger(l.Log).Info("module not for this machine", "module", filepath.Base(p))
	}
	if err != nil {
		return err
	}
	logger(l.Log).Info("modules loaded", "count", r.Loaded, "present", r.Present, "skipped", len(r.Skipped))
	return nil
}

// Network implements Machine: the first Ethernet interface that gets a
// lease, tried in name order.
func (l *Linux) Network(ctx context.Context) (Network, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return Network{}, fmt.Errorf("list network interfaces: %w", err)
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		netlink.LinkSetUp(lo)
	}
	waitEntropy(l.Log)
	var errs []error
	for _, link := range links {
		a := link.Attrs()
		if a.Flags&unix.IFF_LOOPBACK != 0 || len(a.HardwareAddr) != 6 || link.Type() != "device" {
			continue
		}
		nw, err := l.lease(ctx, link)
		if err == nil {
			return nw, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return Network{}, errors.New("no Ethernet interface (is the NIC's driver in the initramfs module list?)")
	}
	return Network{}, errors.Join(errs...)
}

func (l *Linux) lease(ctx context.Context, link netlink.Link) (Network, error) {
	name := link.Attrs().Name
	if err := netlink.LinkSetUp(link); err != nil {
		return Network{}, fmt.Errorf("bring up %s: %w", name, err)
	}
	// Wait (bounded) for a carrier; DHCP before it only loses packets.
	for i := 0; i < 100; i++ {
		if b, err := os.ReadFile("/sys/class/net/" + name + "/carrier"); err == nil && strings.TrimSpace(string(b)) == "1" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	opt97, isPi, err := PiOption97(DeviceTree, link.Attrs().HardwareAddr)
	if err != nil {
		logger(l.Log).Warn("this Pi's DHCP requests go without option 97: racklet-boot knows the node only by its MAC", "err", err)
	} else if isPi {
		logger(l.Log).Info("DHCP with option 97, as the Pi's bootloader", "mac", link.Attrs().HardwareAddr.String())
	}
	res, err := dhcpLease(ctx, name, opt97, DHCPTimeout)
	if err != nil {
		return Network{}, err
	}
	ipnet, gw := leaseAddr(res.ACK)
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: ipnet}); err != nil {
		return Network{}, fmt.Errorf("set %s on %s: %w", ipnet, name, err)
	}
	if gw != nil {
		if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
			logger(l.Log).Warn("default route not set", "ip", gw.String(), "err", err)
		}
	}
	return Network{Interface: name, MAC: link.Attrs().HardwareAddr, Addr: ipnet.String(), Server: res.Server}, nil
}

// waitEntropy blocks (bounded) until the kernel's random generator is
// ready. The DHCP library only polls it without blocking, and on a node
// nothing else has asked for randomness yet: a blocking getrandom is what
// makes the kernel gather jitter entropy (about a second under QEMU TCG).
func waitEntropy(log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		b := make([]byte, 1)
		unix.Getrandom(b, 0)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		logger(log).Warn("the kernel's random generator is still not ready after 30 s")
	}
}

// InitramfsDigest implements Machine (see loadedInitrdDigest).
func (l *Linux) InitramfsDigest() (string, error) { return loadedInitrdDigest() }

// OpenHAT implements Machine. A device path that does not exist yet is
// waited for (bounded); the default virtio port is found by its name in
// sysfs, as there is no udev here to make its symlink.
func (l *Linux) OpenHAT(ctx context.Context, spec string) (io.ReadWriteCloser, error) {
	if strings.HasPrefix(spec, "unix:") || strings.HasPrefix(spec, "tcp:") {
		return hatlink.Dial(ctx, spec)
	}
	dev := spec
	if dev == "" {
		dev = DefaultHAT
	}
	var path string
	for i := 0; i < 50 && path == ""; i++ {
		if _, err := os.Stat(dev); err == nil {
			path = dev
		} else if p := virtioPort(filepath.Base(dev)); dev == DefaultHAT && p != "" {
			path = p
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if path == "" {
		return nil, fmt.Errorf("no HAT at %s (for a node without one, put racklet.hat=none on its command line: it then gets no secrets)", dev)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open the HAT link %s: %w", path, err)
	}
	// A UART needs raw 115200 8N1; a virtio port is no terminal.
	if err := hatlink.MakeRawFile(f); err != nil && !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.EINVAL) {
		f.Close()
		return nil, fmt.Errorf("set %s to raw 115200 8N1: %w", path, err)
	}
	return f, nil
}

// virtioPort finds /dev/vportNpM whose sysfs name is name.
func virtioPort(name string) string {
	ports, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
	for _, p := range ports {
		if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == name {
			return "/dev/" + filepath.Base(filepath.Dir(p))
		}
	}
	return ""
}

// MountRoot implements Machine: loop devices over the fetched files, a
// dm-verity device from the command line's root hash, the squashfs on it
// read-only, and an overlay with its upper directory on /run's tmpfs.
func (l *Linux) MountRoot(ctx context.Context, r Root) (string, error) {
	data, err := attachLoop(r.Squashfs)
	if err != nil {
		return "", err
	}
	hash, err := attachLoop(r.Verity)
	if err != nil {
		return "", err
	}
	v := devmapper.Verity{DataDev: data, HashDev: hash, DataBlocks: r.Params.DataBlocks, HashOffset: r.Params.HashOffset,
		RootHash: r.Params.RootHash, Salt: r.Params.Salt}
	t, err := v.Target()
	if err != nil {
		return "", err
	}
	dev, err := devmapper.Create(VerityName, "RACKLET-"+r.Params.RootHash, []devmapper.Target{t})
	if err != nil {
		return "", err
	}
	for i := 0; i < 50; i++ {
		if _, err := os.Stat(dev.Path()); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	lower, upper, work := "/run/racklet/lower", "/run/racklet/overlay/upper", "/run/racklet/overlay/work"
	for _, d := range []string{lower, upper, work, NewRoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := unix.Mount(dev.Path(), lower, "squashfs", unix.MS_RDONLY, ""); err != nil {
		return "", fmt.Errorf("mount the root squashfs through dm-verity (%s): %w (a verity failure here means the root does not match racklet.roothash)", dev.Path(), err)
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", NewRoot, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount the overlay root: %w", err)
	}
	return NewRoot, nil
}

// attachLoop binds a file to a free loop device and returns its number.
func attachLoop(file string) (uint64, error) {
	var lastErr error
	for range 8 { // another process may take the free device first
		dev, err := loop.FindDevice()
		if err != nil {
			return 0, fmt.Errorf("find a free loop device (is the loop module loaded?): %w", err)
		}
		if err := loop.SetFile(dev, file); err != nil {
			lastErr = err
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(dev, &st); err != nil {
			return 0, err
		}
		return st.Rdev, nil
	}
	return 0, fmt.Errorf("attach %s to a loop device: %w", file, lastErr)
}

// SwitchRoot implements Machine with u-root's switch_root (moves /dev,
// /proc, /sys, /run, frees the initramfs, executes init).
func (l *Linux) SwitchRoot(root, init string) error {
	if _, err := os.Lstat(filepath.Join(root, init)); err != nil {
		return fmt.Errorf("the root has no %s: %w", init, err)
	}
	log.SetOutput(io.Discard) // u-root narrates each step on the standard logger
	return mount.SwitchRoot(root, init)
}

// Fail implements Machine.
func (l *Linux) Fail(action string, delay time.Duration) {
	unix.Sync()
	switch action {
	case bootparams.FailShell:
		for _, sh := range []string{"/bin/sh", "/bin/busybox"} {
			if _, err := os.Stat(sh); err == nil {
				cmd := exec.Command(sh)
				cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
				cmd.Run()
				break
			}
		}
		fmt.Println("racklet-agent: no shell in this initramfs; rebooting")
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	case bootparams.FailHalt:
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	default:
		time.Sleep(delay)
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	select {} // PID 1 must not exit
}

// RunInit is racklet-agent as PID 1: the boot flow on this machine. It
// never returns.
func RunInit(ctx context.Context) {
	m := &Linux{}
	// MountPseudo first, so the console exists for every line after; Boot
	// calls it again, which is harmless.
	m.MountPseudo()
	console := os.Stdout
	level := slog.LevelWarn
	if line, err := m.Cmdline(); err == nil && strings.Contains(" "+line+" ", " racklet.debug ") {
		level = slog.LevelDebug
	}
	m.Log = slog.New(slog.NewTextHandler(console, &slog.HandlerOptions{Level: level}))
	Boot(ctx, BootOptions{Machine: m, Console: console, Logger: m.Log})
	m.Fail(bootparams.FailReboot, 10*time.Second)
}
