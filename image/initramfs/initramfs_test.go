package initramfs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// staticInit is a static x86-64 executable of the build machine to play /init.
func staticInit(t *testing.T) string {
	t.Helper()
	p := testutil.NeedTool(t, "busybox")
	if err := CheckInit(p, "amd64"); err != nil {
		testutil.Unavailable(t, "busybox is not the static x86-64 one of busybox-static: "+err.Error())
	}
	return p
}

// unpack decompresses an initramfs and returns its records by name, in archive order.
func unpack(t *testing.T, b []byte) (map[string]cpio.Record, []string, []byte) {
	t.Helper()
	var r io.Reader
	switch {
	case bytes.HasPrefix(b, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		r = d
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}):
		g, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = g
	default:
		t.Fatalf("initramfs starts with % x: neither zstd nor gzip", b[:4])
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cpio.Record{}
	var names []string
	for _, rec := range recs {
		byName[rec.Name] = rec
		names = append(names, rec.Name)
	}
	return byName, names, raw
}

func content(t *testing.T, recs map[string]cpio.Record, name string) string {
	t.Helper()
	r, ok := recs[name]
	if !ok {
		t.Fatalf("initramfs lacks %s", name)
	}
	b := make([]byte, r.FileSize)
	if _, err := r.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return string(b)
}

func TestBuild(t *testing.T) {
	init := staticInit(t)
	var out [2]bytes.Buffer
	var res *Result
	for i := range out {
		var err error
		res, err = Build(context.Background(), &out[i], Options{Root: testKernel(), KernelVersion: testKver, Init: init, Arch: "amd64",
			Modules: []string{"zram"}, ModTime: 1700000000, Files: map[string][]byte{"etc/racklet/server.pub": []byte("ed25519:key\n")}})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out[0].Bytes(), out[1].Bytes()) {
		t.Fatal("two builds of the same initramfs differ")
	}
	if res.Compression != Zstd {
		t.Errorf("compression %s, want zstd (CONFIG_RD_ZSTD=y)", res.Compression)
	}
	recs, _, raw := unpack(t, out[0].Bytes())
	if res.RawSize != int64(len(raw)) {
		t.Errorf("raw size %d, archive has %d bytes", res.RawSize, len(raw))
	}
	bb, _ := os.ReadFile(init)
	if content(t, recs, "init") != string(bb) || recs["init"].Mode != cpio.S_IFREG|0o755 {
		t.Errorf("/init is not the given executable (mode %o)", recs["init"].Mode)
	}
	if content(t, recs, "etc/racklet/server.pub") != "ed25519:key\n" || recs["etc/racklet/server.pub"].Mode != cpio.S_IFREG|0o644 {
		t.Errorf("extra file: %q mode %o", content(t, recs, "etc/racklet/server.pub"), recs["etc/racklet/server.pub"].Mode)
	}
	if c := recs["dev/console"]; c.Mode != cpio.S_IFCHR|0o600 || c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("/dev/console: %v", c.Info)
	}
	dir := "lib/modules/" + testKver + "/"
	list := strings.Split(strings.TrimSpace(content(t, recs, ModuleList)), "\n")
	if d := cmp.Diff(res.Modules, list); d != "" {
		t.Errorf("%s differs from the result (-result +file):\n%s", ModuleList, d)
	}
	if at := indexOf(list, "/"+dir+"kernel/drivers/block/zram.ko"); at < 1 || list[at-1] != "/"+dir+"kernel/fs/ext4/ext4.ko.zst" {
		t.Errorf("the extra module does not come right after the required ones: %v", list)
	}
	for _, p := range list {
		if got := content(t, recs, strings.TrimPrefix(p, "/")); got != "module "+strings.TrimPrefix(p, "/"+dir) {
			t.Errorf("%s holds %q", p, got)
		}
	}
	if _, ok := recs[dir+"kernel/a/dup.ko"]; ok {
		t.Error("a module nobody asked for was copied")
	}
	dep := content(t, recs, dir+"modules.dep")
	if !strings.Contains(dep, "kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko kernel/lib/reed_solomon/reed_solomon.ko\n") ||
		strings.Count(dep, "\n") != len(list) {
		t.Errorf("modules.dep:\n%s", dep)
	}
	if got, want := content(t, recs, dir+"modules.alias"), "alias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\n"+
		"alias virtio:d00000001v* virtio_net\nalias zram-device zram\nalias fs-ext4 ext4\n"; got != want {
		t.Errorf("modules.alias = %q, want %q", got, want)
	}
	if got := content(t, recs, dir+"modules.softdep"); got != "softdep ext4 pre: crypto-crc32c\nsoftdep virtio_net post: failover-gone\n" {
		t.Errorf("modules.softdep = %q", got)
	}
	if got := content(t, recs, dir+"modules.builtin"); !strings.Contains(got, "kernel/fs/squashfs/squashfs.ko") {
		t.Errorf("modules.builtin = %q", got)
	}
}

func TestBuildCompressionFollowsKernelConfig(t *testing.T) {
	init := staticInit(t)
	tests := map[string]struct {
		config string // "" removes the config file
		magic  []byte
		err    string
	}{
		"zstd":      {config: "CONFIG_RD_ZSTD=y\nCONFIG_RD_GZIP=y\n", magic: []byte{0x28, 0xb5, 0x2f, 0xfd}},
		"gzip":      {config: "# CONFIG_RD_ZSTD is not set\nCONFIG_RD_GZIP=y\n", magic: []byte{0x1f, 0x8b}},
		"no config": {magic: []byte{0x1f, 0x8b}},
		"neither":   {config: "CONFIG_RD_XZ=y\n", err: "neither CONFIG_RD_ZSTD=y nor CONFIG_RD_GZIP=y"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := testKernel()
			delete(root, "boot/config-"+testKver)
			if tc.config != "" {
				root["boot/config-"+testKver] = &fstest.MapFile{Data: []byte(tc.config)}
			}
			var b bytes.Buffer
			_, err := Build(context.Background(), &b, Options{Root: root, KernelVersion: testKver, Init: init, Arch: "amd64"})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(b.Bytes(), tc.magic) {
				t.Fatalf("starts with % x, want % x", b.Bytes()[:4], tc.magic)
			}
			unpack(t, b.Bytes())
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	init := staticInit(t)
	dynamic := testutil.NeedTool(t, "ls")
	noDep := testKernel()
	delete(noDep, "lib/modules/"+testKver+"/modules.dep")
	noMod := testKernel()
	delete(noMod, "lib/modules/"+testKver+"/kernel/drivers/md/dm-mod.ko")
	tests := map[string]struct {
		opts Options
		err  string
		is   error
	}{
		"dynamic init":       {opts: Options{Init: dynamic, Arch: "amd64"}, err: "dynamically linked: build it with CGO_ENABLED=0", is: ErrInit},
		"init of other arch": {opts: Options{Init: init, Arch: "arm64"}, err: "is a EM_X86_64 executable, the image is arm64", is: ErrInit},
		"init not ELF":       {opts: Options{Init: "/etc/hostname", Arch: "amd64"}, is: ErrInit},
		"no kernel":          {opts: Options{Init: init, Arch: "amd64", Root: testKernel()}, err: "install the kernel package in the base"},
		"other kernel":       {opts: Options{Init: init, Arch: "amd64", Root: testKernel(), KernelVersion: "5.10"}, err: "no /lib/modules/5.10"},
		"no modules.dep":     {opts: Options{Init: init, Arch: "amd64", Root: noDep, KernelVersion: testKver}, err: "depmod -b ROOT VERSION"},
		"missing required":   {opts: Options{Init: init, Arch: "amd64", Root: testKernel(), KernelVersion: testKver, Modules: []string{"nosuch"}}, is: ErrModule},
		"module file gone":   {opts: Options{Init: init, Arch: "amd64", Root: noMod, KernelVersion: testKver}, err: "kernel module kernel/drivers/md/dm-mod.ko"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Build(context.Background(), io.Discard, tc.opts)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want %q (%v)", err, tc.err, tc.is)
			}
		})
	}
}

// TestBuildListsWithDebianTools lists the initramfs with Debian's own readers: GNU cpio after
// decompressing, and lsinitramfs from initramfs-tools-core (run from its unpacked package: the
// package itself would pull udev and systemd onto the test machine).
func TestBuildListsWithDebianTools(t *testing.T) {
	init := staticInit(t)
	cpioBin := testutil.NeedTool(t, "cpio")
	testutil.NeedTool(t, "zstd")
	var b bytes.Buffer
	if _, err := Build(context.Background(), &b, Options{Root: testKernel(), KernelVersion: testKver, Init: init, Arch: "amd64"}); err != nil {
		t.Fatal(err)
	}
	_, names, raw := unpack(t, b.Bytes())
	want := strings.Join(names, "\n") + "\n"
	cmd := exec.Command(cpioBin, "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != want {
		t.Errorf("cpio -t: %v\n%s\nwant\n%s", err, out, want)
	}
	tools := imagetest.DebianPackage(t, "initramfs-tools-core")
	img := filepath.Join(t.TempDir(), "initramfs")
	if err := os.WriteFile(img, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ls := exec.Command("sh", filepath.Join(tools, "usr/bin/lsinitramfs"), img)
	ls.Env = append(os.Environ(), "PATH="+filepath.Join(tools, "usr/bin")+":"+os.Getenv("PATH"))
	out, err := ls.CombinedOutput()
	if err != nil || string(out) != want {
		t.Errorf("lsinitramfs: %v\n%s\nwant\n%s", err, out, want)
	}
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
