package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/racklet/racklet-boot/image/disk"
	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/image/imagetest"
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
	m, err := Build(context.Background(), Spec{Base: ref, Overlay: overlay, Disk: true, DiskSizes: smallDisk, CopySlotB: true}, out, Options{})
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
		"squashfs-root/usr/bin/env -> ../../bin/busybox", "squashfs-root/dev/console", "1000/1000", "squashfs-root/etc/racklet/agent.yaml"} {
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
	for _, f := range []string{"start4.elf", "kernel8.img", "overlays/vc4-kms-v3d.dtbo", "config.txt"} {
		if _, err := exec.Command(mcopy, "-n", "-i", filepath.Join(out, BootFile), "::"+f, "-").Output(); err != nil {
			t.Errorf("boot partition lacks %s: %v", f, err)
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
	if want := "boot.vfat disk.img.zst manifest.json root.squashfs root.verity"; strings.Join(names, " ") != want {
		t.Errorf("output holds %v, want %s", names, want)
	}
}

func TestBuildIsReproducible(t *testing.T) {
	ref := testBase(t, imagetest.Options{})
	t.Setenv("SOURCE_DATE_EPOCH", "1712345678")
	dir := t.TempDir()
	spec := Spec{Base: ref, Disk: true, DiskSizes: smallDisk}
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
	if _, err := Build(context.Background(), Spec{Base: ref}, out, Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(filepath.Join(out, RootFile))
	if _, err := Build(context.Background(), Spec{Base: ref}, out, Options{}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(out, RootFile))
	if !os.SameFile(before, after) {
		t.Error("an unchanged rebuild rewrote the output")
	}
	if _, err := Build(context.Background(), Spec{Base: ref, Compression: "gzip"}, out, Options{}); err != nil {
		t.Fatal(err)
	}
	changed, _ := os.Stat(filepath.Join(out, RootFile))
	if os.SameFile(before, changed) {
		t.Error("a changed spec reused the old output")
	}
}

// layoutWith writes an arm64 image of the given layers to a layout.
func layoutWith(t *testing.T, layers ...[]imagetest.Entry) string {
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
	cf.OS, cf.Architecture = "linux", "arm64"
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
	tests := map[string]struct {
		spec Spec
		err  error
	}{
		"missing base":      {spec: Spec{Base: "oci-layout:/nonexistent/base"}, err: source.ErrNotFound},
		"wrong platform":    {spec: Spec{Base: amd}, err: source.ErrPlatform},
		"corrupt layer":     {spec: Spec{Base: "oci-layout:" + corrupt}, err: source.ErrCorrupt},
		"dot-dot tar name":  {spec: Spec{Base: "oci-layout:" + layoutWith(t, append(boot, imagetest.Entry{Name: "../evil", Body: "x"}))}, err: flatten.ErrUnsafeName},
		"absolute tar name": {spec: Spec{Base: "oci-layout:" + layoutWith(t, append(boot, imagetest.Entry{Name: "/etc/evil", Body: "x"}))}, err: flatten.ErrUnsafeName},
		"no boot files":     {spec: Spec{Base: "oci-layout:" + layoutWith(t, []imagetest.Entry{{Name: "etc/x", Body: "x"}})}, err: ErrNoBoot},
		"root bigger than slot": {spec: Spec{Base: "oci-layout:" + layoutWith(t, boot, []imagetest.Entry{{Name: "big", Body: noise(2 << 20)}}),
			Disk: true, DiskSizes: disk.Sizes{Root: 1 << 20}}, err: disk.ErrSlotTooSmall},
		"bad block size": {spec: Spec{Base: "x", BlockSize: 1000}, err: ErrSpec},
		"bad cmdline":    {spec: Spec{Base: "x", Cmdline: "{{.Nope"}, err: ErrSpec},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
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
	_, err := Build(context.Background(), Spec{Base: ref}, out, Options{TempDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("error %v, want no space left on device", err)
	}
	left, _ := os.ReadDir(small)
	if len(left) != 0 {
		t.Errorf("full disk left %d entries behind", len(left))
	}
}
