package devmapper

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/mount/loop"
	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/image/verity"
	"github.com/racklet/racklet-boot/internal/modlist"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/internal/vmtest"
)

// This file checks the package against the kernel and the reference tools:
// the host has no device-mapper, so the test binary itself boots as /init of
// a QEMU machine running Debian's kernel, with veritysetup and dmsetup
// beside it, and prints its findings on the console.

const guestMarker = "DMTEST "

// guestCase is what the host hands the guest in /case.json.
type guestCase struct {
	RootHash, Salt string
	DataBlocks     uint64
	DataSHA256     string
}

func TestMain(m *testing.M) {
	if os.Getpid() == 1 {
		guest()
	}
	os.Exit(m.Run())
}

// TestVerityAgainstVeritysetup: veritysetup open and this package load the
// same table for the same loop devices (compared through dmsetup table and
// through DM_TABLE_STATUS), the device reads back the data, and one flipped
// data byte makes reads fail.
func TestVerityAgainstVeritysetup(t *testing.T) {
	for _, tool := range []string{"veritysetup", "dmsetup", "ldd"} {
		testutil.NeedTool(t, tool)
	}
	k := vmtest.DebianKernel(t)
	dir := t.TempDir()
	data := make([]byte, 64*4096)
	rand.Read(data)
	var hash bytes.Buffer
	res, err := verity.Build(t.Context(), bytes.NewReader(data), int64(len(data)), &hash, verity.Options{Salt: []byte{0xab, 0xcd}})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	c, _ := json.Marshal(guestCase{RootHash: res.RootHashHex(), Salt: "abcd", DataBlocks: res.DataBlocks, DataSHA256: hex.EncodeToString(sum[:])})

	init := filepath.Join(dir, "init")
	vmtest.GoTestBinary(t, "github.com/racklet/racklet-boot/internal/devmapper", init)
	ir := vmtest.NewInitramfs()
	ir.HostFile(t, "init", init)
	ir.DynamicBinary(t, testutil.NeedTool(t, "veritysetup"))
	ir.DynamicBinary(t, testutil.NeedTool(t, "dmsetup"))
	ir.Modules(t, k, "loop", "dm-verity")
	ir.File("data.img", data, 0o644)
	ir.File("hash.img", hash.Bytes(), 0o644)
	ir.File("case.json", c, 0o644)
	ir.Write(t, filepath.Join(dir, "initrd"))

	out := vmtest.Run(t, vmtest.Machine{Kernel: k.Vmlinuz, Initrd: filepath.Join(dir, "initrd"),
		Append: "console=ttyS0 loglevel=3 panic=-1"}, 4*time.Minute)
	var results []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if _, r, ok := strings.Cut(sc.Text(), guestMarker); ok {
			results = append(results, r)
		}
	}
	t.Logf("guest:\n  %s", strings.Join(results, "\n  "))
	if len(results) == 0 || results[len(results)-1] != "PASS" {
		t.Fatalf("the guest did not pass; console:\n%s", vmtest.Tail(out, 5000))
	}
}

// guest runs as PID 1 of the test machine and powers it off.
func guest() {
	say := func(format string, a ...any) { fmt.Printf(guestMarker+format+"\n", a...) }
	if err := guestChecks(say); err != nil {
		say("FAIL: %v", err)
	} else {
		say("PASS")
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func guestChecks(say func(string, ...any)) error {
	for _, m := range []struct{ src, dst, fs string }{{"proc", "/proc", "proc"}, {"sys", "/sys", "sysfs"}, {"dev", "/dev", "devtmpfs"}, {"run", "/run", "tmpfs"}} {
		if err := unix.Mount(m.src, m.dst, m.fs, 0, ""); err != nil {
			return fmt.Errorf("mount %s: %w", m.dst, err)
		}
	}
	if _, err := modlist.Load(context.Background(), "/"+vmtest.ModulesList); err != nil {
		return err
	}
	var c guestCase
	b, err := os.ReadFile("/case.json")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return err
	}
	v, err := Version()
	if err != nil {
		return err
	}
	say("device-mapper interface %d.%d.%d", v[0], v[1], v[2])

	dataLoop, err := attach("/data.img")
	if err != nil {
		return err
	}
	hashLoop, err := attach("/hash.img")
	if err != nil {
		return err
	}
	// The reference: veritysetup on the same block devices.
	os.Setenv("DM_DISABLE_UDEV", "1")
	os.Setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
	if out, err := run("veritysetup", "open", dataLoop.Dev, "ref", hashLoop.Dev, c.RootHash); err != nil {
		return fmt.Errorf("veritysetup open: %w: %s", err, out)
	}
	ref, err := run("dmsetup", "table", "ref")
	if err != nil {
		return fmt.Errorf("dmsetup table ref: %w: %s", err, ref)
	}
	if out, err := run("veritysetup", "close", "ref"); err != nil {
		return fmt.Errorf("veritysetup close: %w: %s", err, out)
	}
	say("veritysetup: %s", ref)

	vt := Verity{DataDev: devNumber(dataLoop.Dev), HashDev: devNumber(hashLoop.Dev), DataBlocks: c.DataBlocks, RootHash: c.RootHash, Salt: c.Salt}
	tg, err := vt.Target()
	if err != nil {
		return err
	}
	dev, err := Create("racklet-test", "RACKLET-test", []Target{tg})
	if err != nil {
		return err
	}
	ours, err := run("dmsetup", "table", "racklet-test")
	if err != nil {
		return fmt.Errorf("dmsetup table racklet-test: %w: %s", err, ours)
	}
	say("ours:        %s", ours)
	back, err := Table("racklet-test")
	if err != nil {
		return err
	}
	if ours != ref || len(back) != 1 || back[0].String() != ref || tg.String() != ref {
		return fmt.Errorf("tables differ: veritysetup %q, dmsetup on ours %q, DM_TABLE_STATUS %v, built %q", ref, ours, back, tg.String())
	}
	sum, err := hashDevice(dev.Path())
	if err != nil || sum != c.DataSHA256 {
		return fmt.Errorf("reading %s: sha256 %s, %v; want %s", dev.Path(), sum, err, c.DataSHA256)
	}
	say("read %s: data intact", dev.Path())
	if err := Remove("racklet-test"); err != nil {
		return err
	}
	if _, err := Table("racklet-test"); !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("table of a removed device: %v, want ENXIO", err)
	}

	// One flipped byte in block 5 of the data: verity must refuse it.
	f, err := os.OpenFile(dataLoop.Dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	one := make([]byte, 1)
	if _, err := f.ReadAt(one, 5*4096+7); err != nil {
		return err
	}
	one[0] ^= 0x01
	if _, err := f.WriteAt(one, 5*4096+7); err != nil {
		return err
	}
	f.Sync()
	f.Close()
	if _, err := Create("racklet-test", "", []Target{tg}); err != nil {
		return err
	}
	defer Remove("racklet-test")
	_, err = hashDevice(dev.Path())
	if !errors.Is(err, unix.EIO) {
		return fmt.Errorf("reading tampered data: %v, want EIO", err)
	}
	say("tampered block refused: %v", err)
	return nil
}

func attach(file string) (*loop.Loop, error) {
	dev, err := loop.FindDevice()
	if err != nil {
		return nil, fmt.Errorf("find a free loop device: %w", err)
	}
	if err := loop.SetFile(dev, file); err != nil {
		return nil, fmt.Errorf("attach %s to %s: %w", file, dev, err)
	}
	return &loop.Loop{Dev: dev, Source: file}, nil
}

func devNumber(path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	return st.Rdev
}

func hashDevice(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
