package flatten

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// entry describes one tar entry of a test layer.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	major, minor     int64
	xattrs           map[string]string
}

func layerTar(t testing.TB, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Linkname: e.link, Devmajor: e.major, Devminor: e.minor, ModTime: time.Unix(2000000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[xattrPAXPrefix+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// dump renders a tree as one line per path for comparison.
func dump(t *testing.T, tr *Tree) []string {
	t.Helper()
	var out []string
	ids := map[*Inode]int{}
	tr.Walk(func(p string, n *Node) error {
		in := n.Inode
		if _, ok := ids[in]; !ok {
			ids[in] = len(ids)
		}
		s := fmt.Sprintf("/%s %d %04o %d:%d n%d", p, in.Kind, in.Perm, in.UID, in.GID, in.Links)
		switch in.Kind {
		case Regular:
			body := ""
			if in.Data != "" {
				b, err := os.ReadFile(in.Data)
				if err != nil {
					t.Fatal(err)
				}
				body = string(b)
			}
			s += fmt.Sprintf(" i%d %q", ids[in], body)
		case Symlink:
			s += " -> " + in.Target
		case CharDev, BlockDev:
			s += fmt.Sprintf(" %d,%d", in.Major, in.Minor)
		}
		if len(in.Xattrs) > 0 {
			s += fmt.Sprintf(" %v", in.Xattrs)
		}
		out = append(out, s)
		return nil
	})
	return out
}

func TestApplyLayers(t *testing.T) {
	base := []entry{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		{name: "etc/passwd", body: "root"},
		{name: "etc/gone", body: "x"},
		{name: "opt/", typ: tar.TypeDir, mode: 0o755},
		{name: "opt/a", body: "a"},
		{name: "opt/sub/b", body: "b"},
		{name: "bin/busybox", body: "bb", mode: 0o4755},
		{name: "bin/sh", typ: tar.TypeLink, link: "bin/busybox"},
		{name: "bin/ls", typ: tar.TypeSymlink, link: "busybox", mode: 0o777},
		{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		{name: "dev/sda", typ: tar.TypeBlock, major: 8, minor: 0, mode: 0o660, gid: 6},
		{name: "bin/ping", body: "p", mode: 0o755, xattrs: map[string]string{"security.capability": "\x01\x02"}},
	}
	tests := map[string]struct {
		layers [][]entry
		want   []string
		err    error
	}{
		"single layer keeps links, devices and xattrs": {
			layers: [][]entry{base[:4]},
			want: []string{
				"/ 1 0755 0:0 n1",
				"/etc 1 0755 0:0 n1",
				"/etc/gone 2 0644 0:0 n1 i2 \"x\"",
				"/etc/passwd 2 0644 0:0 n1 i3 \"root\"",
			},
		},
		"whiteout, opaque dir and replaced hard link": {
			layers: [][]entry{base, {
				{name: "etc/.wh.gone"},
				{name: "opt/new", body: "n"},
				{name: "opt/.wh..wh..opq"},
				{name: "bin/busybox", body: "bb2", mode: 0o755},
				{name: ".wh.nothing-here"},
			}},
			want: []string{
				"/ 1 0755 0:0 n1",
				"/bin 1 0755 0:0 n1",
				"/bin/busybox 2 0755 0:0 n1 i2 \"bb2\"",
				"/bin/ls 3 0777 0:0 n1 -> busybox",
				"/bin/ping 2 0755 0:0 n1 i4 \"p\" map[security.capability:\x01\x02]",
				"/bin/sh 2 4755 0:0 n1 i5 \"bb\"",
				"/dev 1 0755 0:0 n1",
				"/dev/null 4 0666 0:0 n1 1,3",
				"/dev/sda 5 0660 0:6 n1 8,0",
				"/etc 1 0755 0:0 n1",
				"/etc/passwd 2 0644 0:0 n1 i10 \"root\"",
				"/opt 1 0755 0:0 n1",
				"/opt/new 2 0644 0:0 n1 i12 \"n\"",
			},
		},
		"hard link count and whiteout of a directory": {
			layers: [][]entry{base, {{name: ".wh.opt"}, {name: "bin/sh2", typ: tar.TypeLink, link: "./bin/sh"}}},
			want: []string{
				"/ 1 0755 0:0 n1",
				"/bin 1 0755 0:0 n1",
				"/bin/busybox 2 4755 0:0 n3 i2 \"bb\"",
				"/bin/ls 3 0777 0:0 n1 -> busybox",
				"/bin/ping 2 0755 0:0 n1 i4 \"p\" map[security.capability:\x01\x02]",
				"/bin/sh 2 4755 0:0 n3 i2 \"bb\"",
				"/bin/sh2 2 4755 0:0 n3 i2 \"bb\"",
				"/dev 1 0755 0:0 n1",
				"/dev/null 4 0666 0:0 n1 1,3",
				"/dev/sda 5 0660 0:6 n1 8,0",
				"/etc 1 0755 0:0 n1",
				"/etc/gone 2 0644 0:0 n1 i9 \"x\"",
				"/etc/passwd 2 0644 0:0 n1 i10 \"root\"",
			},
		},
		"absolute name refused":  {layers: [][]entry{{{name: "/etc/passwd", body: "x"}}}, err: ErrUnsafeName},
		"dot-dot name refused":   {layers: [][]entry{{{name: "a/../../etc/passwd", body: "x"}}}, err: ErrUnsafeName},
		"dot-dot hard link":      {layers: [][]entry{{{name: "a", typ: tar.TypeLink, link: "../x"}}}, err: ErrUnsafeName},
		"dangling hard link":     {layers: [][]entry{{{name: "a", typ: tar.TypeLink, link: "nope"}}}, err: ErrBadLayer},
		"hard link to directory": {layers: [][]entry{{{name: "d/", typ: tar.TypeDir}, {name: "a", typ: tar.TypeLink, link: "d"}}}, err: ErrBadLayer},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := NewBuilder(Options{TempDir: t.TempDir(), Epoch: 1700000000})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Tree().Close()
			for i, l := range tc.layers {
				err = b.ApplyLayer(context.Background(), bytes.NewReader(layerTar(t, l)), i)
				if err != nil {
					break
				}
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if diff := cmp.Diff(tc.want, dump(t, b.Tree())); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			b.Tree().Walk(func(p string, n *Node) error {
				if n.Inode.ModTime > 1700000000 {
					t.Errorf("%s: mtime %d not clamped", p, n.Inode.ModTime)
				}
				return nil
			})
		})
	}
}

func TestSpillRemovedWithLastLink(t *testing.T) {
	b, err := NewBuilder(Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	l0 := layerTar(t, []entry{{name: "a", body: "data"}, {name: "b", typ: tar.TypeLink, link: "a"}})
	l1 := layerTar(t, []entry{{name: ".wh.a"}, {name: ".wh.b"}})
	ctx := context.Background()
	if err := b.ApplyLayer(ctx, bytes.NewReader(l0), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.ApplyLayer(ctx, bytes.NewReader(l1), 1); err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(b.Tree().SpillDir)
	if len(left) != 0 {
		t.Errorf("spill files left after whiteouts: %d", len(left))
	}
	if err := b.Tree().Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.Tree().SpillDir); !os.IsNotExist(err) {
		t.Errorf("spill dir survives Close: %v", err)
	}
}

func TestAddOverlay(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc/racklet"), 0o750)
	os.WriteFile(filepath.Join(dir, "etc/racklet/agent.yaml"), []byte("node: x\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("overlay"), 0o644)
	os.Symlink("racklet/agent.yaml", filepath.Join(dir, "etc/agent"))
	b, err := NewBuilder(Options{TempDir: t.TempDir(), Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Tree().Close()
	ctx := context.Background()
	if err := b.ApplyLayer(ctx, bytes.NewReader(layerTar(t, []entry{{name: "etc/", typ: tar.TypeDir, mode: 0o700}, {name: "etc/passwd", body: "image", uid: 5}})), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.AddOverlay(ctx, dir); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/ 1 0755 0:0 n1",
		"/etc 1 0700 0:0 n1",
		"/etc/agent 3 0777 0:0 n1 -> racklet/agent.yaml",
		"/etc/passwd 2 0644 0:0 n1 i3 \"overlay\"",
		"/etc/racklet 1 0750 0:0 n1",
		"/etc/racklet/agent.yaml 2 0600 0:0 n1 i5 \"node: x\\n\"",
	}
	if diff := cmp.Diff(want, dump(t, b.Tree())); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

func TestCleanName(t *testing.T) {
	tests := map[string]struct {
		in, want string
		err      error
	}{
		"plain":        {in: "etc/passwd", want: "etc/passwd"},
		"dot slash":    {in: "./etc/passwd", want: "etc/passwd"},
		"root":         {in: "./", want: ""},
		"trailing":     {in: "etc/", want: "etc"},
		"inner dot":    {in: "etc/./x", want: "etc/x"},
		"absolute":     {in: "/etc", err: ErrUnsafeName},
		"climb":        {in: "../etc", err: ErrUnsafeName},
		"inner climb":  {in: "a/../b", err: ErrUnsafeName},
		"nul":          {in: "a\x00b", err: ErrUnsafeName},
		"dots in name": {in: "a/..b", want: "a/..b"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := CleanName(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("CleanName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"etc/passwd", "./", "../x", "/abs", "a/../b", "a//b/./c", "..", ".wh..wh..opq"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := CleanName(s)
		if err != nil {
			return
		}
		if strings.HasPrefix(got, "/") || got == ".." || strings.HasPrefix(got, "../") || strings.Contains(got, "/../") {
			t.Fatalf("CleanName(%q) = %q escapes the root", s, got)
		}
	})
}

func FuzzApplyLayer(f *testing.F) {
	f.Add(layerTar(f, []entry{{name: "a", body: "x"}, {name: "b", typ: tar.TypeLink, link: "a"}, {name: ".wh.a"}}))
	f.Add(layerTar(f, []entry{{name: "d/", typ: tar.TypeDir}, {name: "d/.wh..wh..opq"}, {name: "d/x", typ: tar.TypeSymlink, link: "/etc"}}))
	tmp := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := NewBuilder(Options{TempDir: tmp, MaxFileSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Tree().Close()
		b.ApplyLayer(context.Background(), bytes.NewReader(data), 0)
		b.Tree().Walk(func(p string, n *Node) error {
			if strings.HasPrefix(n.Name, whiteoutPrefix) {
				t.Fatalf("whiteout %s left in tree", p)
			}
			if n.Inode.Data != "" && filepath.Dir(n.Inode.Data) != b.Tree().SpillDir {
				t.Fatalf("content of %s spilled outside the spill dir: %s", p, n.Inode.Data)
			}
			return nil
		})
	})
}
