// Package base_test builds the Debian base images of examples/base/debian.sh from the Debian
// archive and checks them as racklet-image reads them. It is a package of its own so that its
// builds (minutes from an empty cache, seconds after) have their own test timeout and run
// beside the integration tests.
package base_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/image/source"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// baseEpoch is examples/base/debian.sh's default SOURCE_DATE_EPOCH.
const baseEpoch = 1686355200

// debianBase runs examples/base/debian.sh (cached under $RACKLET_CACHE, else
// ~/.cache/racklet) and returns the reference it prints and how long it took.
func debianBase(t *testing.T, out string, args ...string) (string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{"debian.sh", "--out", out}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = os.Environ()
	if os.Getenv("SOURCE_DATE_EPOCH") != "" {
		cmd.Env = append(cmd.Env, "SOURCE_DATE_EPOCH=") // the script's default epoch, as the checks expect
	}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("debian.sh %s: %v\n%s", strings.Join(args, " "), err, lastLines(stderr.String(), 30))
	}
	took := time.Since(start)
	t.Logf("debian.sh %s: %.1f s: %s", strings.Join(args, " "), took.Seconds(), lastLine(stderr.String()))
	return strings.TrimSpace(stdout.String()), took
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

func lastLine(s string) string { return lastLines(s, 1) }

// rackletImage builds cmd/racklet-image into a test directory.
func rackletImage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "racklet-image")
	if out, err := exec.Command("go", "build", "-o", p, "../../cmd/racklet-image").CombinedOutput(); err != nil {
		t.Fatalf("build racklet-image: %v\n%s", err, out)
	}
	// racklet-image packs the agent it finds beside itself into every image's initramfs.
	for _, arch := range []string{"amd64", "arm64"} {
		if _, err := imagetest.Agent(filepath.Dir(p), arch); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// rootTree is the file list of a one-layer base image: clean path -> header.
type rootTree map[string]*tar.Header

// readRoot opens ref as racklet-image build does and reads its layer's headers (and the
// contents of the few small files the checks read), digests checked.
func readRoot(t *testing.T, ref string, plat v1.Platform) (*source.Image, rootTree, map[string]string) {
	t.Helper()
	img, err := source.Open(context.Background(), ref, source.Options{Platform: &plat})
	if err != nil {
		t.Fatal(err)
	}
	ls, err := source.Layers(img)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 {
		t.Fatalf("%d layers, want one", len(ls))
	}
	rc, err := ls[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tree, small := rootTree{}, map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		p := strings.Trim(path.Clean("/"+h.Name), "/")
		tree[p] = h
		if h.Typeflag == tar.TypeReg && h.Size < 4096 && (strings.HasSuffix(p, ".txt") || strings.HasPrefix(p, "etc/")) {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read %s: %v", p, err)
			}
			small[p] = string(b)
		}
	}
	// The digest check happens at the end of the stream.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("read layer: %v", err)
	}
	return img, tree, small
}

// resolve follows symlinks in p (absolute or relative to their directory) as the booted
// system would, and returns the final path and its header (nil when missing).
func (r rootTree) resolve(p string) (string, *tar.Header) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	cur := ""
	for hops := 0; len(parts) > 0 && hops < 40; {
		next := path.Join(cur, parts[0])
		parts = parts[1:]
		h := r[next]
		if h == nil {
			return next, nil
		}
		if h.Typeflag == tar.TypeSymlink {
			hops++
			target := h.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(cur, target)
			}
			parts = append(strings.Split(strings.Trim(path.Clean("/"+target), "/"), "/"), parts...)
			cur = ""
			continue
		}
		cur = next
	}
	return cur, r[cur]
}

// checkBase checks what every base image must hold, and returns the kernel version.
func checkBase(t *testing.T, ref string, plat v1.Platform, small bool) (rootTree, map[string]string, string) {
	t.Helper()
	img, tree, files := readRoot(t, ref, plat)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Architecture != plat.Architecture || cf.OS != "linux" || cf.Created.Unix() != baseEpoch {
		t.Errorf("config: %s/%s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	kver := m.Annotations["io.racklet.base.kernel"]
	if kver == "" {
		t.Fatalf("manifest annotations %v name no kernel", m.Annotations)
	}
	if _, h := tree.resolve("lib/modules/" + kver + "/modules.dep"); h == nil || h.Size == 0 {
		t.Errorf("/lib/modules/%s/modules.dep missing or empty (depmod did not run)", kver)
	}
	if _, h := tree.resolve("boot/vmlinuz-" + kver); h == nil || h.Size < 1<<20 {
		t.Errorf("/boot/vmlinuz-%s missing", kver)
	}
	wantInit := "usr/lib/systemd/systemd"
	if small {
		wantInit = "bin/busybox"
	}
	if got, h := tree.resolve("sbin/init"); got != wantInit || h == nil || h.Typeflag != tar.TypeReg {
		t.Errorf("/sbin/init resolves to /%s, want /%s", got, wantInit)
	}
	if !small {
		if h, ok := tree["etc/machine-id"]; !ok || h.Size != 0 {
			t.Error("/etc/machine-id must exist and be empty")
		}
	}
	for p, h := range tree {
		switch {
		case strings.HasPrefix(p, "etc/ssh/ssh_host_"), p == "etc/resolv.conf", p == "etc/hostname":
			t.Errorf("/%s is in the image", p)
		case strings.HasPrefix(p, "var/lib/apt/lists/") && p != "var/lib/apt/lists/lock" && !strings.HasPrefix(p, "var/lib/apt/lists/partial"):
			t.Errorf("apt list /%s is in the image", p)
		case h.ModTime.Unix() > baseEpoch:
			t.Errorf("/%s has mtime %v, after SOURCE_DATE_EPOCH", p, h.ModTime)
		}
	}
	if plat.Architecture == "arm64" {
		for _, f := range []string{"start4.elf", "fixup4.dat", "bcm2711-rpi-4-b.dtb", "bcm2711-rpi-400.dtb", "bcm2711-rpi-cm4-io.dtb", "config.txt", "vmlinuz-" + kver} {
			if h := tree["boot/firmware/"+f]; h == nil || h.Typeflag != tar.TypeReg || h.Size == 0 {
				t.Errorf("/boot/firmware/%s missing", f)
			}
		}
		cfg := files["boot/firmware/config.txt"]
		for _, line := range []string{"arm_64bit=1", "enable_uart=1", "kernel=vmlinuz-" + kver} {
			if !strings.Contains(cfg, line+"\n") {
				t.Errorf("config.txt lacks %q:\n%s", line, cfg)
			}
		}
	}
	skopeo := testutil.NeedTool(t, "skopeo")
	raw, err := exec.Command(skopeo, "inspect", "oci:"+strings.TrimPrefix(ref, source.LayoutPrefix)).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v\n%s", err, raw)
	}
	var si struct{ Architecture, Os string }
	if err := json.Unmarshal(raw, &si); err != nil || si.Architecture != plat.Architecture || si.Os != "linux" {
		t.Errorf("skopeo inspect: %v %+v", err, si)
	}
	return tree, files, kver
}

// needBaseTools stops the test unless the base can be built here.
func needBaseTools(t *testing.T, arch string) {
	t.Helper()
	testutil.NeedRoot(t, "mmdebstrap --mode=root, binfmt_misc")
	for _, tool := range []string{"mmdebstrap", "dpkg-deb", "depmod", "flock", "skopeo"} {
		testutil.NeedTool(t, tool)
	}
	if arch == "arm64" {
		testutil.NeedTool(t, "qemu-aarch64-static")
		testutil.NeedTool(t, "update-binfmts")
	}
}

// TestDebianBaseAmd64 builds the full amd64 base from the Debian archive (or takes it from
// the cache), checks its root, rebuilds it from scratch to the same digest, and builds a
// racklet image from it with racklet-image.
func TestDebianBaseAmd64(t *testing.T) {
	t.Parallel() // beside the arm64 build, which keeps about one core busy emulating
	needBaseTools(t, "amd64")
	amd64 := v1.Platform{OS: "linux", Architecture: "amd64"}
	work := t.TempDir()
	out := filepath.Join(work, "base")
	ref, first := debianBase(t, out, "--arch", "amd64")
	if want := source.LayoutPrefix + out + ":bookworm-amd64"; ref != want {
		t.Fatalf("printed %q, want %q", ref, want)
	}
	_, warm := debianBase(t, out, "--arch", "amd64")
	t.Logf("amd64 base: first run %.1f s, cached run %.1f s", first.Seconds(), warm.Seconds())
	_, _, kver := checkBase(t, ref, amd64, false)

	// Reproducible: a build from scratch must give the cached digest (the script fails otherwise).
	_, again := debianBase(t, out, "--arch", "amd64", "--rebuild")
	t.Logf("amd64 base: rebuild from scratch %.1f s, same digest", again.Seconds())

	img := filepath.Join(work, "img")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, rackletImage(t), "build", "--base", ref,
		"--platform", "linux/amd64", "--dir", img).CombinedOutput()
	if err != nil {
		t.Fatalf("racklet-image build: %v\n%s", err, b)
	}
	m, err := image.ReadManifest(img)
	if err != nil {
		t.Fatal(err)
	}
	if m.KernelVersion != kver {
		t.Errorf("racklet-image found kernel %q, the base has %q", m.KernelVersion, kver)
	}
}

// TestDebianBaseArm64 builds both arm64 profiles (systemd, and --small with busybox init),
// checks the Pi 4 boot files, and rebuilds the small one from scratch to the same digest.
func TestDebianBaseArm64(t *testing.T) {
	t.Parallel()
	needBaseTools(t, "arm64")
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	out := filepath.Join(t.TempDir(), "base")

	ref, took := debianBase(t, out, "--arch", "arm64", "--small")
	t.Logf("arm64 small base: %.1f s", took.Seconds())
	tree, files, _ := checkBase(t, ref, arm64, true)
	if h := tree["etc/init.d/rcS"]; h == nil || h.Mode&0o111 == 0 {
		t.Error("/etc/init.d/rcS missing or not executable")
	}
	if !strings.Contains(files["etc/inittab"], "::sysinit:/etc/init.d/rcS") {
		t.Errorf("inittab does not run rcS:\n%s", files["etc/inittab"])
	}
	_, again := debianBase(t, out, "--arch", "arm64", "--small", "--rebuild")
	t.Logf("arm64 small base: rebuild from scratch %.1f s, same digest", again.Seconds())

	ref, took = debianBase(t, out, "--arch", "arm64")
	t.Logf("arm64 base: %.1f s", took.Seconds())
	checkBase(t, ref, arm64, false)
	// Both tags live in one layout.
	if _, err := source.Open(context.Background(), source.LayoutPrefix+out+":bookworm-arm64-small", source.Options{Platform: &arm64}); err != nil {
		t.Errorf("the small tag is gone after adding the full one: %v", err)
	}
}
