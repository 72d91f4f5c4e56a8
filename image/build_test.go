package image

import (
	"bytes"
	"context"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/image/disk"
	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/image/initramfs"
	"github.com/racklet/racklet-boot/image/source"
	"github.com/racklet/racklet-boot/internal/testutil"
)

func testBase(t *testing.T, opts imagetest.Options) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil && opts.Busybox == "" {
		testutil.Unavailable(t, fmt.Sprintf("no /bin/busybox (Debian package busybox-static): %v", err))
	}
	ref, err := imagetest.WriteLayout(filepath.Join(t.TempDir(), "base"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// fakeAgent is a static ELF header of arch standing in for racklet-agent.
func fakeAgent(t *testing.T, arch string) string {
	t.Helper()
	p, err := imagetest.FakeAgent(t.TempDir(), arch)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var smallDisk = disk.Sizes{Control: 64 << 20, Boot: 80 << 20, Root: 16 << 20, Data: 4 << 20}

func TestBuildOutputsCheckWithRealTools(t *testing.T) {
	unsq := testutil.NeedTool(t, "unsquashfs")
	vs := testutil.NeedTool(t, "veritysetup")
	fsck := testutil.NeedTool(t, "fsck.vfat")
	mcopy := testutil.NeedTool(t, "mcopy")
	ref := testBase(t, imagetest.Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}})
	overlay := t.TempDir()
	os.MkdirAll(filepath.Join(overlay, "etc/racklet"), 0o755)
	os.WriteFile(filepath.Join(overlay, "etc/racklet/agent.yaml"), []byte("server: 10.0.0.2\n"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("SOURCE_DATE_EPOCH", "")
	agent := fakeAgent(t, "arm64")
	m, err := Build(context.Background(), Spec{Base: ref, Overlay: overlay, Disk: true, DiskSizes: smallDisk, CopySlotB: true, Agent: agent}, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(out); err != nil {
		t.Fatal(err)
	}
	if m.KernelVersion != "6.6.31-v8" || !m.Created.Equal(imagetest.Created) {
		t.Errorf("kernel %q created %v", m.KernelVersion, m.Created)
	}
	list, err := exec.Command(unsq, "-lln", "-n", filepath.Join(out, RootFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lln: %v\n%s", err, list)
	}
	for _, want := range []string{"squashfs-root/bin/busybox", "squashfs-root/bin/sh", "squashfs-root/opt/app/c",
		"squashfs-root/usr/bin/env -> ../../bin/busybox", "squashfs-root/dev/console", "1000/1000", "squashfs-root/etc/racklet/agent.yaml",
		"squashfs-root/usr/lib/racklet/racklet-agent",
		"squashfs-root/usr/lib/systemd/system/racklet-health.service",
		"squashfs-root/etc/systemd/system/multi-user.target.wants/racklet-health.service -> /usr/lib/systemd/system/racklet-health.service"} {
		if !strings.Contains(string(list), want) {
			t.Errorf("root lacks %q", want)
		}
	}
	for _, gone := range []string{"squashfs-root/bin/ls", "old.conf", "opt/app/a", ".wh."} {
		if strings.Contains(string(list), gone) {
			t.Errorf("root still has %q", gone)
		}
	}
	if o, err := exec.Command(vs, "verify", filepath.Join(out, RootFile), filepath.Join(out, VerityFile), m.Verity.RootHash).CombinedOutput(); err != nil {
		t.Errorf("veritysetup verify: %v\n%s", err, o)
	}
	if o, err := exec.Command(fsck, "-n", filepath.Join(out, BootFile)).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, o)
	}
	cmd, err := exec.Command(mcopy, "-n", "-i", filepath.Join(out, BootFile), "::cmdline.txt", "-").Output()
	if err != nil || strings.TrimSpace(string(cmd)) != m.Cmdline || !strings.Contains(m.Cmdline, m.Verity.RootHash) {
		t.Errorf("cmdline.txt = %q (%v), manifest cmdline %q", cmd, err, m.Cmdline)
	}
	for _, f := range []string{"start4.elf", "kernel8.img", "overlays/vc4-kms-v3d.dtbo", "config.txt", "initramfs8"} {
		if _, err := exec.Command(mcopy, "-n", "-i", filepath.Join(out, BootFile), "::"+f, "-").Output(); err != nil {
			t.Errorf("boot partition lacks %s: %v", f, err)
		}
	}
	config, _ := exec.Command(mcopy, "-n", "-i", filepath.Join(out, BootFile), "::config.txt", "-").Output()
	if want := "arm_64bit=1\nkernel=kernel8.img\n[all]\ninitramfs initramfs8 followkernel\n"; string(config) != want {
		t.Errorf("config.txt = %q, want %q", config, want)
	}
	initrd, _ := exec.Command(mcopy, "-n", "-i", filepath.Join(out, BootFile), "::initramfs8", "-").Output()
	if ir := m.Boot.Initramfs; ir == nil || ir.File != "initramfs8" || ir.Digest != digestOf(initrd) || ir.Compression != "zstd" ||
		len(ir.Modules) != 3 || ir.Agent != digestOf(readFile(t, agent)) {
		t.Errorf("manifest initramfs %+v; boot partition's has %d bytes %s", ir, len(initrd), digestOf(initrd))
	}
	if k := m.Boot.Kernel; k == nil || *k != (Blob{File: "kernel8.img", Size: 18, Digest: digestOf([]byte("kernel-image-arm64"))}) {
		t.Errorf("manifest kernel %+v", k)
	}
	for _, w := range []string{"console=tty1 console=serial0,115200 retain_initrd racklet.roothash=" + m.Verity.RootHash + " racklet.salt=" + m.Verity.Salt,
		"racklet.datablocks=" + fmt.Sprint(m.Verity.DataBlocks), "racklet.root=" + m.Root.Digest, "racklet.verity=" + m.Verity.Digest} {
		if !strings.Contains(m.Cmdline, w) {
			t.Errorf("cmdline %q lacks %q", m.Cmdline, w)
		}
	}
	if m.Disk == nil || m.Disk.RawSize == 0 {
		t.Fatalf("no disk image in manifest")
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := "boot-b.vfat boot.vfat disk.img.zst manifest.json root.squashfs root.verity"; strings.Join(names, " ") != want {
		t.Errorf("output holds %v, want %s", names, want)
	}
	// One boot partition per slot, each naming its own root partition of this disk.
	id := m.Disk.DiskID
	if !strings.Contains(m.Cmdline, "racklet.rootdev=PARTUUID="+id+"-05") {
		t.Errorf("slot A's cmdline %q does not name root 5 of disk %s", m.Cmdline, id)
	}
	cmdB, err := exec.Command(mcopy, "-n", "-i", filepath.Join(out, BootBFile), "::cmdline.txt", "-").Output()
	if err != nil || m.BootB == nil || strings.TrimSpace(string(cmdB)) != m.BootB.Cmdline || !strings.Contains(m.BootB.Cmdline, "racklet.rootdev=PARTUUID="+id+"-06") {
		t.Errorf("boot-b.vfat's cmdline.txt %q (%v), manifest %+v: want root 6 of disk %s", cmdB, err, m.BootB, id)
	}
	if o, err := exec.Command(fsck, "-n", filepath.Join(out, BootBFile)).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n boot-b.vfat: %v\n%s", err, o)
	}
}

// TestBuildSharedDiskID: two versions of a rack's image built with one
// disk id (the second without a disk image) name the same disk in both
// slots' command lines, so a disk flashed with the first takes the second.
func TestBuildSharedDiskID(t *testing.T) {
	ref := testBase(t, imagetest.Options{})
	agent := fakeAgent(t, "arm64")
	var ms []*Manifest
	for i, spec := range []Spec{{Disk: true, DiskSizes: smallDisk}, {ConfigTxt: "arm_64bit=1\n# v2\n"}} {
		spec.Base, spec.Agent, spec.DiskID = ref, agent, "1a2b3c4d"
		out := filepath.Join(t.TempDir(), fmt.Sprint("v", i+1))
		m, err := Build(context.Background(), spec, out, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Check(out); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	if ms[0].Disk == nil || ms[0].Disk.DiskID != "1a2b3c4d" || ms[1].Disk != nil {
		t.Errorf("disk of v1 %+v, of v2 %+v; want v1's with id 1a2b3c4d, none for v2", ms[0].Disk, ms[1].Disk)
	}
	for i, m := range ms {
		if !strings.Contains(m.Cmdline, "racklet.rootdev=PARTUUID=1a2b3c4d-05") || m.BootB == nil ||
			!strings.Contains(m.BootB.Cmdline, "racklet.rootdev=PARTUUID=1a2b3c4d-06") {
			t.Errorf("v%d: slot A cmdline %q, slot B %+v; want roots 5 and 6 of disk 1a2b3c4d", i+1, m.Cmdline, m.BootB)
		}
	}
	if _, err := Build(context.Background(), Spec{Base: ref, Agent: agent, DiskID: "00000000"}, t.TempDir(), Options{}); !errors.Is(err, ErrSpec) {
		t.Errorf("disk id 00000000: %v, want ErrSpec", err)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	ref := testBase(t, imagetest.Options{})
	t.Setenv("SOURCE_DATE_EPOCH", "1712345678")
	dir := t.TempDir()
	spec := Spec{Base: ref, Disk: true, DiskSizes: smallDisk, Agent: fakeAgent(t, "arm64")}
	var ms [2]*Manifest
	for i, d := range []string{"a", "b"} {
		m, err := Build(context.Background(), spec, filepath.Join(dir, d), Options{NoCache: true})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	for _, f := range []string{ManifestFile, BootFile, RootFile, VerityFile, DiskFile} {
		a, _ := os.ReadFile(filepath.Join(dir, "a", f))
		b, _ := os.ReadFile(filepath.Join(dir, "b", f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds (%d and %d bytes)", f, len(a), len(b))
		}
	}
	if ms[0].Created.Unix() != 1712345678 {
		t.Errorf("created %v, want SOURCE_DATE_EPOCH", ms[0].Created)
	}
}

func TestBuildReusesOutputOfSameInputs(t *testing.T) {
	ref := testBase(t, imagetest.Options{})
	out := filepath.Join(t.TempDir(), "out")
	agent := fakeAgent(t, "arm64")
	if _, err := Build(context.Background(), Spec{Base: ref, Agent: agent}, out, Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(filepath.Join(out, RootFile))
	// The same agent bytes under another path are the same input.
	moved := filepath.Join(t.TempDir(), "racklet-agent")
	os.WriteFile(moved, readFile(t, agent), 0o755)
	if _, err := Build(context.Background(), Spec{Base: ref, Agent: moved}, out, Options{}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(out, RootFile))
	if !os.SameFile(before, after) {
		t.Error("an unchanged rebuild rewrote the output")
	}
	for name, spec := range map[string]Spec{
		"spec":       {Base: ref, Agent: agent, Compression: "gzip"},
		"server key": {Base: ref, Agent: agent, Compression: "gzip", ServerKey: "ed25519:G3D+zno7uzBYXyPIyl7YZalwTn+ZdU4tug4gqzkPLos="},
		"agent":      {Base: ref, Agent: appendTo(t, agent, "another build")},
	} {
		if _, err := Build(context.Background(), spec, out, Options{}); err != nil {
			t.Fatal(err)
		}
		changed, _ := os.Stat(filepath.Join(out, RootFile))
		if os.SameFile(before, changed) {
			t.Errorf("a changed %s reused the old output", name)
		}
		before = changed
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// modulesOnly is the fake kernel's module directory without its /boot.
func modulesOnly() []imagetest.Entry {
	var es []imagetest.Entry
	for _, e := range imagetest.KernelEntries() {
		if !strings.HasPrefix(e.Name, "boot/") {
			es = append(es, e)
		}
	}
	return es
}

// appendTo copies the file at p with s appended and returns the copy's path.
func appendTo(t *testing.T, p, s string) string {
	t.Helper()
	q := filepath.Join(t.TempDir(), filepath.Base(p))
	if err := os.WriteFile(q, append(readFile(t, p), s...), 0o755); err != nil {
		t.Fatal(err)
	}
	return q
}

// layoutWith writes an arm64 image of the given layers, over a layer of fake kernel modules,
// to a layout.
func layoutWith(t *testing.T, layers ...[]imagetest.Entry) string {
	t.Helper()
	return layoutOf(t, append([][]imagetest.Entry{imagetest.KernelEntries()}, layers...)...)
}

// layoutOf writes an arm64 image of exactly the given layers to a layout.
func layoutOf(t *testing.T, layers ...[]imagetest.Entry) string {
	t.Helper()
	return layoutArch(t, "arm64", layers...)
}

// layoutArch writes a linux/arch image of exactly the given layers to a layout.
func layoutArch(t *testing.T, arch string, layers ...[]imagetest.Entry) string {
	t.Helper()
	img := empty.Image
	for _, es := range layers {
		b, err := imagetest.TarLayer(es)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		img, _ = mutate.AppendLayers(img, l)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	img, _ = mutate.ConfigFile(img, cf)
	dir := filepath.Join(t.TempDir(), "l")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuildRefusesBadInput(t *testing.T) {
	boot := []imagetest.Entry{{Name: "boot/kernel8.img", Body: "k"}}
	corrupt := layoutWith(t, boot, []imagetest.Entry{{Name: "etc/x", Body: strings.Repeat("x", 5000)}})
	blobs, _ := filepath.Glob(filepath.Join(corrupt, "blobs/sha256/*"))
	for _, b := range blobs {
		if fi, _ := os.Stat(b); fi.Size() > 40 && fi.Size() < 200 {
			data, _ := os.ReadFile(b)
			if data[0] == 0x1f { // a gzip layer: flip a byte inside the deflate stream
				data[len(data)/2] ^= 0xff
				os.WriteFile(b, data, 0o644)
			}
		}
	}
	amd := testBase(t, imagetest.Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}})
	arm := testBase(t, imagetest.Options{})
	agent, amdAgent := fakeAgent(t, "arm64"), fakeAgent(t, "amd64")
	tests := map[string]struct {
		spec Spec
		err  error
	}{
		"no agent":               {spec: Spec{Base: arm, Agent: "/nonexistent/racklet-agent"}, err: ErrNoAgent},
		"agent of another arch":  {spec: Spec{Base: arm, Agent: amdAgent}, err: initramfs.ErrInit},
		"no kernel modules":      {spec: Spec{Base: "oci-layout:" + layoutOf(t, boot)}, err: initramfs.ErrNoModules},
		"module not in kernel":   {spec: Spec{Base: arm, Modules: []string{"nosuch"}}, err: initramfs.ErrModule},
		"no kernel":              {spec: Spec{Base: "oci-layout:" + layoutWith(t, []imagetest.Entry{{Name: "boot/firmware/start4.elf", Body: "s"}})}, err: ErrNoKernel},
		"shell without debug":    {spec: Spec{Base: "x", Node: NodeSettings{OnFailure: "shell"}}, err: ErrSpec},
		"bad overlay location":   {spec: Spec{Base: "x", Node: NodeSettings{Overlay: "disk"}}, err: ErrSpec},
		"bad failure delay":      {spec: Spec{Base: "x", Node: NodeSettings{OnFailure: "reboot:soon"}}, err: ErrSpec},
		"module name with space": {spec: Spec{Base: "x", Modules: []string{"a b"}}, err: ErrSpec},
		"bad server key":         {spec: Spec{Base: "x", ServerKey: "ed25519:not-a-key"}, err: ErrSpec},
		"missing base":           {spec: Spec{Base: "oci-layout:/nonexistent/base"}, err: source.ErrNotFound},
		"wrong platform":         {spec: Spec{Base: amd}, err: source.ErrPlatform},
		"corrupt layer":          {spec: Spec{Base: "oci-layout:" + corrupt}, err: source.ErrCorrupt},
		"dot-dot tar name":       {spec: Spec{Base: "oci-layout:" + layoutWith(t, append(boot, imagetest.Entry{Name: "../evil", Body: "x"}))}, err: flatten.ErrUnsafeName},
		"absolute tar name":      {spec: Spec{Base: "oci-layout:" + layoutWith(t, append(boot, imagetest.Entry{Name: "/etc/evil", Body: "x"}))}, err: flatten.ErrUnsafeName},
		"no boot files":          {spec: Spec{Base: "oci-layout:" + layoutOf(t, modulesOnly())}, err: ErrNoBoot},
		"no kernel in boot":      {spec: Spec{Base: "oci-layout:" + layoutWith(t, []imagetest.Entry{{Name: "etc/x", Body: "x"}})}, err: ErrNoKernel},
		"root bigger than slot": {spec: Spec{Base: "oci-layout:" + layoutWith(t, boot, []imagetest.Entry{{Name: "big", Body: noise(2 << 20)}}),
			Disk: true, DiskSizes: disk.Sizes{Root: 1 << 20}}, err: disk.ErrSlotTooSmall},
		"bad block size": {spec: Spec{Base: "x", BlockSize: 1000}, err: ErrSpec},
		"bad cmdline":    {spec: Spec{Base: "x", Cmdline: "{{.Nope"}, err: ErrSpec},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if tc.spec.Agent == "" {
				tc.spec.Agent = agent
			}
			_, err := Build(context.Background(), tc.spec, out, Options{})
			if tc.err == nil {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if _, serr := os.Stat(out); !os.IsNotExist(serr) {
				t.Errorf("failed build left output behind: %v", serr)
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".out.partial-*"))
			if len(left) > 0 {
				t.Errorf("failed build left %v", left)
			}
		})
	}
}

func noise(n int) string {
	b := make([]byte, n)
	rand.New(rand.NewSource(9)).Read(b)
	return string(b)
}

// TestBuildFullDisk builds onto a 1 MiB tmpfs: the build must fail with the system's error and
// leave nothing behind. It needs root to mount the tmpfs.
func TestBuildFullDisk(t *testing.T) {
	mount := testutil.NeedTool(t, "mount")
	testutil.NeedRoot(t, "the full-disk test mounts a 1 MiB tmpfs")
	ref := testBase(t, imagetest.Options{})
	small := t.TempDir()
	if out, err := exec.Command(mount, "-t", "tmpfs", "-o", "size=1m", "racklet-full", small).CombinedOutput(); err != nil {
		testutil.Unavailable(t, fmt.Sprintf("cannot mount a tmpfs here: %v\n%s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", small).Run() })
	out := filepath.Join(small, "out")
	_, err := Build(context.Background(), Spec{Base: ref, Agent: fakeAgent(t, "arm64")}, out, Options{TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("error %v, want no space left on device", err)
	}
	left, _ := os.ReadDir(small)
	if len(left) != 0 {
		t.Errorf("full disk left %d entries behind", len(left))
	}
}

// TestBootLayout builds a generic x86-64 base and a Debian-style Pi base and checks how the
// boot partition names their kernel and initramfs.
func TestBootLayout(t *testing.T) {
	mdir := testutil.NeedTool(t, "mdir")
	mcopy := testutil.NeedTool(t, "mcopy")
	kv := imagetest.KernelVersion
	tests := map[string]struct {
		arch   string
		layer  []imagetest.Entry
		files  string // mdir -b of the boot partition, sorted
		kernel Blob
		config string
		cmd    string
		uki    string // the unified kernel image's name, when the root has systemd's EFI stub
	}{
		"generic /boot": {arch: "amd64", layer: []imagetest.Entry{
			{Name: "boot/vmlinuz-" + kv, Body: "bzImage"}, {Name: "boot/initrd.img-" + kv, Body: "debian's own"},
			{Name: "boot/System.map-" + kv, Body: "map"}, {Name: "boot/grub/grub.cfg", Body: "grub"}},
			files:  "::/cmdline.txt ::/grub/ ::/grub/grub.cfg ::/initramfs ::/vmlinuz",
			kernel: Blob{File: "vmlinuz", Size: 7, Digest: digestOf([]byte("bzImage"))},
			cmd:    "console=tty0 console=ttyS0,115200 retain_initrd racklet.roothash=",
		},
		"generic /boot with systemd's EFI stub": {arch: "amd64", layer: []imagetest.Entry{
			{Name: "boot/vmlinuz-" + kv, Body: "bzImage"}, {Name: "etc/os-release", Body: "ID=debian\n"},
			{Name: "usr/lib/systemd/boot/efi/linuxx64.efi.stub", Body: string(debianEFIStub(t))}},
			files:  "::/bootx64.efi ::/cmdline.txt ::/initramfs ::/vmlinuz",
			kernel: Blob{File: "vmlinuz", Size: 7, Digest: digestOf([]byte("bzImage"))},
			cmd:    "console=tty0 console=ttyS0,115200 retain_initrd racklet.roothash=",
			uki:    "bootx64.efi",
		},
		"pi firmware without its kernel": {arch: "arm64", layer: []imagetest.Entry{
			{Name: "boot/vmlinuz-" + kv, Body: "arm64 Image"}, {Name: "boot/firmware/start4.elf", Body: "s"},
			{Name: "boot/firmware/config.txt", Body: "arm_64bit=1\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n[pi4]\nmax_framebuffers=2"}},
			files:  "::/cmdline.txt ::/config.txt ::/initramfs8 ::/start4.elf ::/vmlinuz",
			kernel: Blob{File: "vmlinuz", Size: 11, Digest: digestOf([]byte("arm64 Image"))},
			config: "arm_64bit=1\nkernel=vmlinuz\n[pi4]\nmax_framebuffers=2\n[all]\ninitramfs initramfs8 followkernel\n",
			cmd:    "console=tty1 console=serial0,115200 retain_initrd racklet.roothash=",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ref := "oci-layout:" + layoutArch(t, tc.arch, imagetest.KernelEntries(), tc.layer)
			out := filepath.Join(t.TempDir(), "out")
			m, err := Build(context.Background(), Spec{Base: ref, Platform: "linux/" + tc.arch, Agent: fakeAgent(t, tc.arch),
				Node: NodeSettings{HAT: "none", OnFailure: "halt"}}, out, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ls, err := exec.Command(mdir, "-/", "-b", "-i", filepath.Join(out, BootFile), "::").Output()
			if err != nil {
				t.Fatal(err)
			}
			names := strings.Fields(string(ls))
			sort.Strings(names)
			if got := strings.Join(names, " "); got != tc.files {
				t.Errorf("boot partition holds %s, want %s", got, tc.files)
			}
			if m.Boot.Kernel == nil || *m.Boot.Kernel != tc.kernel {
				t.Errorf("manifest kernel %+v, want %+v", m.Boot.Kernel, tc.kernel)
			}
			if tc.config != "" {
				if got, _ := exec.Command(mcopy, "-n", "-i", filepath.Join(out, BootFile), "::config.txt", "-").Output(); string(got) != tc.config {
					t.Errorf("config.txt = %q, want %q", got, tc.config)
				}
			}
			if !strings.HasPrefix(m.Cmdline, tc.cmd) || !strings.HasSuffix(m.Cmdline, " racklet.hat=none racklet.kernel="+tc.kernel.File+" racklet.onfailure=halt") {
				t.Errorf("cmdline %q", m.Cmdline)
			}
			if p, rest, err := bootparams.Parse(m.Cmdline); err != nil || p.Validate() != nil || len(rest) != 3 {
				t.Errorf("the command line does not parse as the agent reads it: %+v %v %v", p, rest, err)
			}
			if tc.uki != "" {
				checkUKI(t, out, m, tc.uki)
			} else if m.Boot.UKI != nil {
				t.Errorf("manifest names a unified kernel image %+v without a stub in the root", m.Boot.UKI)
			}
		})
	}
}

// debianEFIStub is systemd's EFI stub for this machine from Debian's systemd-boot-efi.
func debianEFIStub(t *testing.T) []byte {
	t.Helper()
	dir := imagetest.DebianPackage(t, "systemd-boot-efi")
	return readFile(t, filepath.Join(dir, "usr/lib/systemd/boot/efi/linuxx64.efi.stub"))
}

// checkUKI checks the boot partition's unified kernel image: pinned by the manifest, its
// sections the partition's kernel, initramfs and the command line.
func checkUKI(t *testing.T, out string, m *Manifest, name string) {
	t.Helper()
	get := func(f string) []byte {
		b, err := exec.Command("mcopy", "-n", "-i", filepath.Join(out, BootFile), "::"+f, "-").Output()
		if err != nil {
			t.Fatalf("mcopy %s: %v", f, err)
		}
		return b
	}
	img := get(name)
	if m.Boot.UKI == nil || m.Boot.UKI.File != name || m.Boot.UKI.Digest != digestOf(img) {
		t.Fatalf("manifest UKI %+v, boot partition's %s has digest %s", m.Boot.UKI, name, digestOf(img))
	}
	f, err := pe.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	for sec, want := range map[string][]byte{".linux": get("vmlinuz"), ".initrd": get("initramfs"), ".cmdline": []byte(m.Cmdline), ".osrel": []byte("ID=debian\n")} {
		s := f.Section(sec)
		if s == nil {
			t.Errorf("%s has no %s section", name, sec)
			continue
		}
		b, _ := s.Data()
		if !bytes.Equal(b[:s.VirtualSize], want) {
			t.Errorf("%s section %s: %d bytes, want the %d of the boot partition", name, sec, s.VirtualSize, len(want))
		}
	}
}
