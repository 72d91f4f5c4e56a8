package initramfs

import (
	"path"
	"strings"
	"testing"
)

// FuzzResolve parses modules.dep, modules.softdep and modules.alias text and resolves every
// module they name: parsing never panics, accepted paths stay inside the module directory,
// and every resolution loads dependencies first.
func FuzzResolve(f *testing.F) {
	f.Add("kernel/a.ko: kernel/b.ko kernel/c.ko.xz\nkernel/b.ko: kernel/c.ko.xz\nkernel/c.ko.xz:\n",
		"softdep a pre: x post: b\nsoftdep b pre: a\n", "alias x c\nalias y* a\n")
	f.Add("kernel/a.ko: kernel/a.ko\n", "softdep a pre: a post: a\n", "alias a a\n")
	f.Add("a.ko:\n# comment\n\n", "softdep cifs gcm\n", "")
	f.Fuzz(func(t *testing.T, dep, soft, alias string) {
		ix := &Index{}
		var err error
		if ix.Deps, err = ParseDep(strings.NewReader(dep)); err != nil {
			return
		}
		if ix.Pre, ix.Post, err = ParseSoftdep(strings.NewReader(soft)); err != nil {
			return
		}
		if ix.Aliases, err = ParseAlias(strings.NewReader(alias)); err != nil {
			return
		}
		var names []string
		for p, ds := range ix.Deps {
			for _, q := range append([]string{p}, ds...) {
				if strings.HasPrefix(q, "/") || path.Clean(q) != q || q == ".." || strings.HasPrefix(q, "../") {
					t.Fatalf("module path %q escapes the module directory", q)
				}
			}
			names = append(names, ModuleName(p))
		}
		res, err := ix.Resolve(nil, append(names, "y1", "x"))
		if err != nil {
			return // two files of one name
		}
		checkOrder(t, ix, res.Load)
	})
}

// FuzzParseKernelConfig: any text parses without panicking, and only CONFIG_ keys come out.
func FuzzParseKernelConfig(f *testing.F) {
	f.Add("CONFIG_RD_ZSTD=y\n# CONFIG_RD_GZIP is not set\nCONFIG_X=\"a=b\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseKernelConfig(strings.NewReader(s))
		if err != nil {
			return
		}
		for k := range cfg {
			if !strings.HasPrefix(k, "CONFIG_") {
				t.Fatalf("key %q", k)
			}
		}
		ChooseCompression(cfg)
	})
}
