package squashfs

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/internal/testutil"
)

type tentry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	major, minor     int64
	xattrs           map[string]string
}

// testTree builds a tree with every kind of entry plus files that span blocks and fragments.
func testTree(t *testing.T, big int) *flatten.Tree {
	t.Helper()
	rnd := rand.New(rand.NewSource(1))
	large := make([]byte, big)
	rnd.Read(large[:big/2]) // half random, half zeros
	es := []tentry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/busybox", body: "#!busybox\n", mode: 0o4755},
		{name: "bin/sh", typ: tar.TypeLink, link: "bin/busybox"},
		{name: "bin/ls", typ: tar.TypeSymlink, link: "busybox", mode: 0o777},
		{name: "dev/null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		{name: "dev/sdb300", typ: tar.TypeBlock, major: 259, minor: 300, mode: 0o660, gid: 6},
		{name: "run/fifo", typ: tar.TypeFifo, mode: 0o600},
		{name: "usr/bin/ping", body: "ping", mode: 0o755, xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", "user.note": "hi"}},
		{name: "usr/lib/big.bin", body: string(large), uid: 1000, gid: 1000},
		{name: "empty", body: ""},
		{name: "home/user/", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000, xattrs: map[string]string{"user.dir": "yes"}},
	}
	for i := range 300 {
		es = append(es, tentry{name: fmt.Sprintf("etc/many/f%03d", i), body: strings.Repeat("x", i*37)})
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Linkname: e.link,
			Devmajor: e.major, Devminor: e.minor, ModTime: time.Unix(1600000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	b, err := flatten.NewBuilder(flatten.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ApplyLayer(context.Background(), &buf, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Tree().Close() })
	return b.Tree()
}

func writeImage(t *testing.T, tr *flatten.Tree, opts Options) (string, Stats) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "root.squashfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := Write(context.Background(), f, tr, opts)
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	return p, st
}

func TestUnsquashfsReadsImage(t *testing.T) {
	unsq := testutil.NeedTool(t, "unsquashfs")
	for _, comp := range []Compression{Zstd, XZ, Gzip} {
		t.Run(string(comp), func(t *testing.T) {
			tr := testTree(t, 300_000)
			img, st := writeImage(t, tr, Options{Compression: comp, BlockSize: 65536, ModTime: 1700000000, Workers: 3})
			if st.Size%4096 != 0 {
				t.Errorf("size %d not padded to 4 KiB", st.Size)
			}
			out, err := exec.Command(unsq, "-s", img).CombinedOutput()
			if err != nil {
				t.Fatalf("unsquashfs -s: %v\n%s", err, out)
			}
			for _, want := range []string{"Compression " + string(comp), "Block size 65536", "Number of inodes 319", "Number of ids 3"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("unsquashfs -s lacks %q:\n%s", want, out)
				}
			}
			out, err = exec.Command(unsq, "-lln", "-n", img).CombinedOutput()
			if err != nil {
				t.Fatalf("unsquashfs -lln: %v\n%s", err, out)
			}
			var got []string
			for _, l := range strings.Split(string(out), "\n") {
				f := strings.Fields(l)
				if len(f) < 6 || strings.Contains(l, "/etc/many/") {
					continue
				}
				got = append(got, strings.Join(append([]string{f[0], f[1]}, f[len(f)-1]), " "))
			}
			want := []string{
				"drwxr-xr-x 0/0 squashfs-root",
				"drwxr-xr-x 0/0 squashfs-root/bin",
				"-rwsr-xr-x 0/0 squashfs-root/bin/busybox",
				"lrwxrwxrwx 0/0 busybox",
				"-rwsr-xr-x 0/0 squashfs-root/bin/sh",
				"drwxr-xr-x 0/0 squashfs-root/dev",
				"crw-rw-rw- 0/0 squashfs-root/dev/null",
				"brw-rw---- 0/6 squashfs-root/dev/sdb300",
				"-rw-r--r-- 0/0 squashfs-root/empty",
				"drwxr-xr-x 0/0 squashfs-root/etc",
				"drwxr-xr-x 0/0 squashfs-root/etc/many",
				"drwxr-xr-x 0/0 squashfs-root/home",
				"drwx------ 1000/1000 squashfs-root/home/user",
				"drwxr-xr-x 0/0 squashfs-root/run",
				"prw------- 0/0 squashfs-root/run/fifo",
				"drwxr-xr-x 0/0 squashfs-root/usr",
				"drwxr-xr-x 0/0 squashfs-root/usr/bin",
				"-rwxr-xr-x 0/0 squashfs-root/usr/bin/ping",
				"drwxr-xr-x 0/0 squashfs-root/usr/lib",
				"-rw-r--r-- 1000/1000 squashfs-root/usr/lib/big.bin",
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("unsquashfs -lln (-want +got):\n%s", diff)
			}
			if os.Geteuid() != 0 {
				return
			}
			dest := filepath.Join(t.TempDir(), "x")
			if out, err := exec.Command(unsq, "-n", "-d", dest, img).CombinedOutput(); err != nil {
				t.Fatalf("unsquashfs -d: %v\n%s", err, out)
			}
			compareContents(t, tr, dest)
			var ds unix.Stat_t
			if err := unix.Lstat(filepath.Join(dest, "dev/sdb300"), &ds); err != nil {
				t.Fatal(err)
			}
			if maj, min := unix.Major(ds.Rdev), unix.Minor(ds.Rdev); maj != 259 || min != 300 {
				t.Errorf("dev/sdb300 extracted as %d,%d, want 259,300", maj, min)
			}
			buf := make([]byte, 64)
			n, err := unix.Lgetxattr(filepath.Join(dest, "usr/bin/ping"), "user.note", buf)
			if err != nil || string(buf[:n]) != "hi" {
				t.Errorf("xattr user.note of usr/bin/ping = %q, %v; want \"hi\"", buf[:n], err)
			}
			if n, err := unix.Lgetxattr(filepath.Join(dest, "usr/bin/ping"), "security.capability", buf); err != nil || n != 20 {
				t.Errorf("security.capability of usr/bin/ping: %d bytes, %v", n, err)
			}
		})
	}
}

// compareContents checks every regular file of the tree against the extracted copy.
func compareContents(t *testing.T, tr *flatten.Tree, dest string) {
	t.Helper()
	n := 0
	tr.Walk(func(p string, node *flatten.Node) error {
		if node.Inode.Kind != flatten.Regular {
			return nil
		}
		var want []byte
		if node.Inode.Data != "" {
			want, _ = os.ReadFile(node.Inode.Data)
		}
		got, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s: content differs (%d bytes, want %d)", p, len(got), len(want))
		}
		n++
		return nil
	})
	if n < 300 {
		t.Errorf("compared only %d files", n)
	}
}

func TestWriteIsReproducible(t *testing.T) {
	tr := testTree(t, 1<<20)
	a, _ := writeImage(t, tr, Options{Workers: 1, ModTime: 5})
	b, _ := writeImage(t, tr, Options{Workers: 4, ModTime: 5})
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Errorf("two writes of one tree differ (%d and %d bytes)", len(ab), len(bb))
	}
}

func TestOptionsRejected(t *testing.T) {
	tr := testTree(t, 10)
	for name, o := range map[string]Options{
		"block size not a power of two": {BlockSize: 100000},
		"block size too big":            {BlockSize: 2 << 20},
		"unknown compressor":            {Compression: "lz5"},
	} {
		t.Run(name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "x"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := Write(context.Background(), f, tr, o); !errors.Is(err, ErrOptions) {
				t.Errorf("error %v, want ErrOptions", err)
			}
		})
	}
}

// TestLargeDirectory writes a directory whose listing exceeds 64 KiB (an extended directory
// inode) and spans many metadata blocks, and checks unsquashfs lists and extracts all of it.
func TestLargeDirectory(t *testing.T) {
	unsq := testutil.NeedTool(t, "unsquashfs")
	const n = largeDirEntries
	img, _ := writeImage(t, largeDirTree(t), Options{BlockSize: 4096})
	out, err := exec.Command(unsq, "-lln", "-n", img).CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -l: %v\n%s", err, out)
	}
	if got := strings.Count(string(out), "squashfs-root/d/long-name"); got != n {
		t.Errorf("unsquashfs lists %d entries, want %d", got, n)
	}
	if os.Geteuid() != 0 {
		return
	}
	dest := filepath.Join(t.TempDir(), "x")
	if out, err := exec.Command(unsq, "-n", "-d", dest, img).CombinedOutput(); err != nil {
		t.Fatalf("unsquashfs -d: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(dest, fmt.Sprintf("d/%s-%05d", strings.Repeat("long-name-", 4), 2999)))
	if err != nil || string(got) != "2999" {
		ents, _ := os.ReadDir(filepath.Join(dest, "d"))
		names := []string{}
		for _, e := range ents[len(ents)-3:] {
			names = append(names, e.Name())
		}
		t.Errorf("last file reads %q, %v; %d extracted, last %v", got, err, len(ents), names)
	}
}

// BenchmarkWrite measures the writer on a tree with a 16 MiB half-random file and 300 small
// files, zstd at the default level, all CPUs.
func BenchmarkWrite(b *testing.B) {
	tr := benchTree(b)
	dir := b.TempDir()
	b.SetBytes(16 << 20)
	for i := 0; i < b.N; i++ {
		f, err := os.Create(filepath.Join(dir, "img"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Write(context.Background(), f, tr, Options{}); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func benchTree(b *testing.B) *flatten.Tree {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	big := make([]byte, 16<<20)
	rand.New(rand.NewSource(1)).Read(big[:8<<20])
	tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: int64(len(big)), Typeflag: tar.TypeReg})
	tw.Write(big)
	for i := range 300 {
		body := strings.Repeat("y", i*31)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("etc/f%d", i), Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	bl, err := flatten.NewBuilder(flatten.Options{TempDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bl.Tree().Close() })
	if err := bl.ApplyLayer(context.Background(), &buf, 0); err != nil {
		b.Fatal(err)
	}
	return bl.Tree()
}

const largeDirEntries = 3000

// largeDirTree has one directory of 3000 files with long names: a listing over 64 KiB.
func largeDirTree(t *testing.T) *flatten.Tree {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := range largeDirEntries {
		name := fmt.Sprintf("d/%s-%05d", strings.Repeat("long-name-", 4), i)
		body := fmt.Sprint(i)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
		tw.Write([]byte(body))
	}
	tw.Close()
	b, err := flatten.NewBuilder(flatten.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Tree().Close() })
	if err := b.ApplyLayer(context.Background(), &buf, 0); err != nil {
		t.Fatal(err)
	}
	return b.Tree()
}
