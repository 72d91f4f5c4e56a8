package flatten

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"testing"
)

func TestTreeFS(t *testing.T) {
	b, err := NewBuilder(Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Tree().Close()
	layer := layerTar(t, []entry{
		{name: "usr/lib/modules/6.1/modules.dep", body: "kernel/a.ko:\n"},
		{name: "usr/lib/modules/6.1/kernel/a.ko", body: "module a"},
		{name: "lib", typ: tar.TypeSymlink, link: "usr/lib", mode: 0o777},
		{name: "etc/alt", typ: tar.TypeSymlink, link: "/lib/modules/6.1/../6.1/modules.dep", mode: 0o777},
		{name: "etc/loop", typ: tar.TypeSymlink, link: "loop", mode: 0o777},
		{name: "etc/empty", body: ""},
	})
	if err := b.ApplyLayer(context.Background(), bytes.NewReader(layer), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.AddFile("etc/empty", 0o755, strings.NewReader("now full"), 8); err != nil {
		t.Fatal(err)
	}
	if err := b.AddFile("usr/lib/racklet/agent", 0o755, strings.NewReader("agent"), 5); err != nil {
		t.Fatal(err)
	}
	if err := b.AddSymlink("etc/wants/agent", "/lib/racklet/agent"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../x", "/abs", ""} {
		if err := b.AddSymlink(bad, "x"); !errors.Is(err, ErrUnsafeName) {
			t.Errorf("AddSymlink(%q): %v, want ErrUnsafeName", bad, err)
		}
	}
	fsys := b.Tree().FS()
	for name, want := range map[string]string{
		"usr/lib/modules/6.1/modules.dep": "kernel/a.ko:\n",
		"lib/modules/6.1/kernel/a.ko":     "module a",
		"etc/alt":                         "kernel/a.ko:\n",
		"etc/empty":                       "now full",
		"etc/wants/agent":                 "agent",
	} {
		got, err := fs.ReadFile(fsys, name)
		if err != nil || string(got) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := fs.Stat(fsys, "lib/modules/6.1"); err != nil || !fi.IsDir() {
		t.Errorf("Stat(lib/modules/6.1) = %v, %v", fi, err)
	}
	if es, err := fs.ReadDir(fsys, "lib/modules/6.1"); err != nil || len(es) != 2 || es[0].Name() != "kernel" || !es[0].IsDir() {
		t.Errorf("ReadDir(lib/modules/6.1) = %v, %v", es, err)
	}
	for name, want := range map[string]error{
		"etc/loop":             syscall.ELOOP,
		"etc/nothing":          fs.ErrNotExist,
		"etc/empty/x":          syscall.ENOTDIR,
		"../etc/empty":         fs.ErrInvalid,
		"lib/modules/6.1/gone": fs.ErrNotExist,
	} {
		if _, err := fs.ReadFile(fsys, name); !errors.Is(err, want) {
			t.Errorf("ReadFile(%s): %v, want %v", name, err, want)
		}
	}
}
