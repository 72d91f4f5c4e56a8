package initramfs

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const testKver = "6.1.0-test"

// testKernel is a synthetic module directory: dependencies several levels deep, built-in
// modules, compressed module files, softdeps through aliases, two files of one name.
func testKernel() fstest.MapFS {
	d := "lib/modules/" + testKver + "/"
	fsys := fstest.MapFS{
		d + "modules.dep": {Data: []byte(`kernel/drivers/md/dm-mod.ko:
kernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko
kernel/lib/reed_solomon/reed_solomon.ko:
kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko kernel/lib/reed_solomon/reed_solomon.ko
kernel/drivers/md/dm-crypt.ko.xz: kernel/drivers/md/dm-mod.ko
kernel/fs/ext4/ext4.ko.zst: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/arch/x86/crypto/crc32c-intel.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/drivers/virtio/virtio.ko
kernel/drivers/net/net_failover.ko:
kernel/drivers/virtio/virtio.ko:
kernel/drivers/block/zram.ko:
kernel/a/dup.ko:
kernel/b/dup.ko:
`)},
		d + "modules.builtin":         {Data: []byte("kernel/fs/squashfs/squashfs.ko\nkernel/fs/overlayfs/overlay.ko\nkernel/drivers/block/loop.ko\n")},
		d + "modules.builtin.modinfo": {Data: []byte("loop.alias=block-major-7-*\x00squashfs.alias=fs-squashfs\x00loop.license=GPL\x00")},
		d + "modules.softdep":         {Data: []byte("# Soft dependencies extracted from modules themselves.\nsoftdep ext4 pre: crypto-crc32c\nsoftdep virtio_net post: failover-gone\nsoftdep cifs gcm\n")},
		d + "modules.alias": {Data: []byte("alias crypto-crc32c crc32c_intel\nalias crypto-crc32c crc32c_generic\n" +
			"alias virtio:d00000001v* virtio_net\nalias zram-device zram\nalias fs-ext4 ext4\n")},
		"boot/config-" + testKver: {Data: []byte("CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n# CONFIG_RD_XZ is not set\n")},
	}
	for _, l := range strings.Split(string(fsys[d+"modules.dep"].Data), "\n") {
		if p, _, ok := strings.Cut(l, ":"); ok {
			fsys[d+p] = &fstest.MapFile{Data: []byte("module " + p)}
		}
	}
	return fsys
}

func TestResolve(t *testing.T) {
	ix, err := LoadIndex(testKernel(), "lib/modules/"+testKver)
	if err != nil {
		t.Fatal(err)
	}
	defaultLoad := []string{
		"kernel/drivers/md/dm-mod.ko",
		"kernel/lib/reed_solomon/reed_solomon.ko", "kernel/drivers/md/dm-bufio.ko", "kernel/drivers/md/dm-verity.ko",
		"kernel/drivers/md/dm-crypt.ko.xz",
		"kernel/arch/x86/crypto/crc32c-intel.ko", "kernel/crypto/crc32c_generic.ko",
		"kernel/fs/jbd2/jbd2.ko", "kernel/fs/mbcache.ko", "kernel/lib/crc16.ko", "kernel/fs/ext4/ext4.ko.zst",
		"kernel/drivers/virtio/virtio.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko",
	}
	defaultMissing := []string{"bcmgenet", "broadcom", "failover-gone", "iproc-rng200", "mdio-bcm-unimac", "virtio-rng", "virtio_console", "virtio_pci"}
	tests := map[string]struct {
		required, optional []string
		want               *Resolution
		err                string
	}{
		"boot path and drivers": {required: Required, optional: Drivers("arm64"),
			want: &Resolution{Load: defaultLoad, Builtin: []string{"loop", "overlay", "squashfs"}, Missing: defaultMissing}},
		"dependency already loaded": {required: []string{"dm-bufio", "dm_verity"},
			want: &Resolution{Load: []string{"kernel/drivers/md/dm-mod.ko", "kernel/drivers/md/dm-bufio.ko",
				"kernel/lib/reed_solomon/reed_solomon.ko", "kernel/drivers/md/dm-verity.ko"}}},
		"by alias":         {required: []string{"zram-device"}, want: &Resolution{Load: []string{"kernel/drivers/block/zram.ko"}}},
		"by glob alias":    {required: []string{"virtio:d00000001v00001AF4"}, want: &Resolution{Load: []string{"kernel/drivers/virtio/virtio.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"}, Missing: []string{"failover-gone"}}},
		"builtin by alias": {required: []string{"fs-squashfs"}, want: &Resolution{Builtin: []string{"fs-squashfs"}}},
		"optional absent":  {optional: []string{"nosuch"}, want: &Resolution{Missing: []string{"nosuch"}}},
		"required absent":  {required: []string{"dm-mod", "nosuch"}, err: `module "nosuch" is neither in modules.dep nor built in`},
		"ambiguous name":   {required: []string{"dup"}, err: `module "dup": 2 files of that name (kernel/a/dup.ko, kernel/b/dup.ko)`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ix.Resolve(tc.required, tc.optional)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrModule) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q (ErrModule)", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("resolution (-want +got):\n%s", d)
			}
			checkOrder(t, ix, got.Load)
		})
	}
}

// checkOrder fails when a module comes before one of its dependencies.
func checkOrder(t *testing.T, ix *Index, load []string) {
	t.Helper()
	at := map[string]int{}
	for i, p := range load {
		at[p] = i
	}
	for i, p := range load {
		for _, d := range ix.Deps[p] {
			if j, ok := at[d]; !ok || j > i {
				t.Errorf("%s loads at %d but its dependency %s at %d (present %v)", p, i, d, j, ok)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := map[string]struct {
		parse func(string) error
		in    string
		err   string
	}{
		"dep without colon":   {parse: parseDep, in: "kernel/a.ko\n", err: "line 1"},
		"dep absolute":        {parse: parseDep, in: "/kernel/a.ko:\n", err: "line 1"},
		"dep dot-dot":         {parse: parseDep, in: "kernel/a.ko: ../../etc/passwd.ko\n", err: "is not a module path"},
		"dep not a module":    {parse: parseDep, in: "kernel/a.ko: kernel/readme\n", err: "is not a module path"},
		"softdep bare":        {parse: parseSoftdep, in: "softdep\n", err: "without a module"},
		"alias short":         {parse: parseAlias, in: "alias onlypattern\n", err: "line 1"},
		"alias other keyword": {parse: parseAlias, in: "options x y\n", err: "line 1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := tc.parse(tc.in); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
		})
	}
}

func parseDep(s string) error { _, err := ParseDep(strings.NewReader(s)); return err }
func parseSoftdep(s string) error {
	_, _, err := ParseSoftdep(strings.NewReader(s))
	return err
}
func parseAlias(s string) error { _, err := ParseAlias(strings.NewReader(s)); return err }

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/md/dm-mod.ko": "dm_mod", "dm-verity": "dm_verity", "ext4.ko.zst": "ext4",
		"kernel/x/crc32c-intel.ko.xz": "crc32c_intel", "virtio_net": "virtio_net", "a.ko.gz": "a",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChooseCompression(t *testing.T) {
	tests := map[string]struct {
		config string // "" means no config file
		want   Compression
		err    bool
	}{
		"zstd and gzip": {config: "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n", want: Zstd},
		"gzip only":     {config: "CONFIG_RD_GZIP=y\n# CONFIG_RD_ZSTD is not set\n", want: Gzip},
		"no config":     {want: Gzip},
		"neither":       {config: "CONFIG_RD_XZ=y\n# CONFIG_RD_GZIP is not set\n", err: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var cfg map[string]string
			if tc.config != "" {
				var err error
				if cfg, err = ParseKernelConfig(strings.NewReader(tc.config)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ChooseCompression(cfg)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
