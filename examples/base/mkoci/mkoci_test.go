package main

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/racklet/racklet-boot/image/source"
)

var (
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
)

// rootTar writes a small root file system tarball, as mmdebstrap lays one out.
func rootTar(t *testing.T, body string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1686355200, 0)
	for _, h := range []*tar.Header{
		{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "./etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt},
		{Name: "./etc/machine-id", Typeflag: tar.TypeReg, Mode: 0o444, ModTime: mt},
		{Name: "./sbin", Typeflag: tar.TypeSymlink, Linkname: "usr/sbin", ModTime: mt},
		{Name: "./usr/sbin/init", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body)), ModTime: mt},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "root.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pack(t *testing.T, o PackOptions) v1.Hash {
	t.Helper()
	d, err := Pack(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// tags lists the tags of a layout's index with their digests.
func tags(t *testing.T, dir string) map[string]string {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range im.Manifests {
		got[d.Annotations[refNameAnnotation]] = d.Digest.String()
	}
	return got
}

func TestPackIsReproducible(t *testing.T) {
	tarA := rootTar(t, "systemd")
	base := PackOptions{Tar: tarA, Platform: arm64, Tag: "bookworm-arm64", Epoch: 1686355200,
		Annotations: map[string]string{"io.racklet.base.kernel": "6.1.0-50-arm64"}}
	ref := base
	ref.Layout = t.TempDir()
	want := pack(t, ref)
	for _, tc := range []struct {
		name   string
		change func(*PackOptions)
		same   bool
	}{
		{"same inputs", func(*PackOptions) {}, true},
		{"same bytes, another file", func(o *PackOptions) { o.Tar = rootTar(t, "systemd") }, true},
		{"other content", func(o *PackOptions) { o.Tar = rootTar(t, "busybox") }, false},
		{"other epoch", func(o *PackOptions) { o.Epoch++ }, false},
		{"other platform", func(o *PackOptions) { o.Platform = amd64 }, false},
		{"other annotation", func(o *PackOptions) { o.Annotations = map[string]string{"io.racklet.base.kernel": "6.1.0-51-arm64"} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			o.Layout = t.TempDir()
			tc.change(&o)
			if got := pack(t, o); (got == want) != tc.same {
				t.Errorf("digest %s, first build %s: want same=%v", got, want, tc.same)
			}
		})
	}
}

func TestPackReadsAsBase(t *testing.T) {
	tarPath := rootTar(t, "systemd")
	dir := t.TempDir()
	d := pack(t, PackOptions{Tar: tarPath, Platform: amd64, Layout: dir, Tag: "bookworm-amd64", Epoch: 1686355200})
	// The repository's own base reader, as racklet-image build --base uses it.
	img, err := source.Open(context.Background(), "oci-layout:"+dir+":bookworm-amd64", source.Options{Platform: &amd64})
	if err != nil {
		t.Fatal(err)
	}
	if img.ManifestDigest != d {
		t.Errorf("opened %s, packed %s", img.ManifestDigest, d)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Created.Unix() != 1686355200 || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("config created %v, platform %s/%s", cf.Created, cf.OS, cf.Architecture)
	}
	if _, err := source.Open(context.Background(), "oci-layout:"+dir+":bookworm-amd64", source.Options{Platform: &arm64}); err == nil {
		t.Error("an amd64 base opened as arm64")
	}
	ls, err := img.Layers()
	if err != nil || len(ls) != 1 {
		t.Fatalf("layers %d, %v: want one", len(ls), err)
	}
	mt, _ := ls[0].MediaType()
	if mt != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Errorf("layer media type %s", mt)
	}
	rc, err := ls[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(tarPath)
	if !bytes.Equal(got, want) {
		t.Error("the layer is not the tarball byte for byte")
	}
}

func TestCopy(t *testing.T) {
	cache := t.TempDir()
	dArm := pack(t, PackOptions{Tar: rootTar(t, "arm"), Platform: arm64, Layout: cache, Tag: "bookworm-arm64", Epoch: 1})
	dAmd := pack(t, PackOptions{Tar: rootTar(t, "amd"), Platform: amd64, Layout: cache, Tag: "bookworm-amd64", Epoch: 1})
	dArm2 := pack(t, PackOptions{Tar: rootTar(t, "arm2"), Platform: arm64, Layout: t.TempDir(), Tag: "bookworm-arm64", Epoch: 1})
	cache2 := t.TempDir()
	pack(t, PackOptions{Tar: rootTar(t, "arm2"), Platform: arm64, Layout: cache2, Tag: "bookworm-arm64", Epoch: 1})

	out := filepath.Join(t.TempDir(), "out") // missing: created
	steps := []struct {
		name string
		from string
		tag  string
		want map[string]string
	}{
		{"into a new layout", cache, "bookworm-arm64", map[string]string{"bookworm-arm64": dArm.String()}},
		{"another tag beside it", cache, "bookworm-amd64", map[string]string{"bookworm-arm64": dArm.String(), "bookworm-amd64": dAmd.String()}},
		{"same tag again", cache, "bookworm-amd64", map[string]string{"bookworm-arm64": dArm.String(), "bookworm-amd64": dAmd.String()}},
		{"a newer image replaces the tag", cache2, "bookworm-arm64", map[string]string{"bookworm-arm64": dArm2.String(), "bookworm-amd64": dAmd.String()}},
	}
	for _, s := range steps {
		d, err := Copy(context.Background(), CopyOptions{From: s.from, Tag: s.tag, To: out})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if d.String() != s.want[s.tag] {
			t.Errorf("%s: copied %s, want %s", s.name, d, s.want[s.tag])
		}
		if diff := cmp.Diff(s.want, tags(t, out)); diff != "" {
			t.Errorf("%s: tags (-want +got):\n%s", s.name, diff)
		}
	}
	// Blobs are links to the cache's, not copies.
	img, err := layout.Path(out).Image(dAmd)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	a, errA := os.Stat(filepath.Join(cache, "blobs", "sha256", ld.Hex))
	b, errB := os.Stat(filepath.Join(out, "blobs", "sha256", ld.Hex))
	if errA != nil || errB != nil {
		t.Fatalf("stat layer blobs: %v, %v", errA, errB)
	}
	if a.Sys().(*syscall.Stat_t).Ino != b.Sys().(*syscall.Stat_t).Ino {
		t.Error("the layer blob was copied, not hard-linked")
	}
	// The copy reads as a base image.
	if _, err := source.Open(context.Background(), "oci-layout:"+out+":bookworm-arm64", source.Options{Platform: &arm64}); err != nil {
		t.Errorf("open copied image: %v", err)
	}
}

func TestErrors(t *testing.T) {
	tarPath := rootTar(t, "x")
	cache := t.TempDir()
	pack(t, PackOptions{Tar: tarPath, Platform: arm64, Layout: cache, Tag: "bookworm-arm64", Epoch: 1})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage"},
		{"unknown command", []string{"push"}, "unknown command"},
		{"pack without tag", []string{"pack", "-tar", tarPath, "-layout", t.TempDir()}, "needs -tar, -layout and -tag"},
		{"bad epoch", []string{"pack", "-tar", tarPath, "-layout", t.TempDir(), "-tag", "x", "-epoch", "yesterday"}, "not seconds since 1970"},
		{"bad annotation", []string{"pack", "-tar", tarPath, "-layout", t.TempDir(), "-tag", "x", "-epoch", "1", "-annotation", "novalue"}, "not KEY=VALUE"},
		{"bad platform", []string{"pack", "-tar", tarPath, "-layout", t.TempDir(), "-tag", "x", "-epoch", "1", "-platform", "linux/arm64/v8/extra"}, "parse -platform"},
		{"missing tarball", []string{"pack", "-tar", filepath.Join(t.TempDir(), "none.tar"), "-layout", t.TempDir(), "-tag", "x", "-epoch", "1"}, "open root tarball"},
		{"copy without source", []string{"copy", "-tag", "x", "-to", t.TempDir()}, "needs -from, -tag and -to"},
		{"copy of a missing tag", []string{"copy", "-from", cache, "-tag", "bookworm-amd64", "-to", t.TempDir()}, `has no tag "bookworm-amd64"`},
		{"copy from no layout", []string{"copy", "-from", t.TempDir(), "-tag", "x", "-to", t.TempDir()}, "open OCI layout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestRunPrintsDigest(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(context.Background(), []string{"pack", "-tar", rootTar(t, "x"), "-layout", dir, "-tag", "t", "-epoch", "1",
		"-platform", "linux/arm64", "-annotation", "a=b"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	want := tags(t, dir)["t"]
	if got := strings.TrimSpace(out.String()); got != want {
		t.Errorf("printed %q, index has %q", got, want)
	}
}
