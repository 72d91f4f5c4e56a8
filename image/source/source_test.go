package source

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/racklet/racklet-boot/image/imagetest"
)

var (
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64"}
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
)

func testImage(t *testing.T, p v1.Platform) v1.Image {
	t.Helper()
	testutil.NeedTool(t, "busybox")
	img, err := imagetest.Image(imagetest.Options{}, p)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// readAll reads every layer to its end, as the digest check needs.
func readAll(t *testing.T, img *Image) error {
	t.Helper()
	ls, err := Layers(img)
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Open()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func TestOpenRegistryIndexByPlatform(t *testing.T) {
	reg := imagetest.StartRegistry(t)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: testImage(t, amd64), Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: testImage(t, arm64), Descriptor: v1.Descriptor{Platform: &arm64}})
	ref, err := name.ParseReference(reg+"/base/multi:1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	img, err := Open(ctx, reg+"/base/multi:1", Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if cf.Architecture != "arm64" {
		t.Errorf("picked %s, want arm64", cf.Architecture)
	}
	if err := readAll(t, img); err != nil {
		t.Errorf("read layers: %v", err)
	}
	riscv := v1.Platform{OS: "linux", Architecture: "riscv64"}
	if _, err := Open(ctx, reg+"/base/multi:1", Options{Insecure: true, Platform: &riscv}); !errors.Is(err, ErrPlatform) {
		t.Errorf("riscv64: error %v, want ErrPlatform", err)
	}
	if _, err := Open(ctx, reg+"/base/none:1", Options{Insecure: true}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing repository: error %v, want ErrNotFound", err)
	}
}

func TestOpenDockerArchive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "base.tar")
	tag, _ := name.NewTag("example.com/base:v1")
	if err := tarball.WriteToFile(path, tag, testImage(t, arm64)); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{ArchivePrefix + path, ArchivePrefix + path + ":example.com/base:v1"} {
		img, err := Open(context.Background(), ref, Options{})
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if err := readAll(t, img); err != nil {
			t.Errorf("%s: read layers: %v", ref, err)
		}
	}
	if _, err := Open(context.Background(), ArchivePrefix+path+".missing", Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing archive: error %v, want ErrNotFound", err)
	}
	if _, err := Open(context.Background(), ArchivePrefix+path, Options{Platform: &amd64}); !errors.Is(err, ErrPlatform) {
		t.Errorf("wrong platform: error %v, want ErrPlatform", err)
	}
}

func TestOpenLayoutTag(t *testing.T) {
	testutil.NeedTool(t, "busybox")
	dir := filepath.Join(t.TempDir(), "l")
	ref, err := imagetest.WriteLayout(dir, imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), ref, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), LayoutPrefix+dir+":nope", Options{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: error %v, want ErrNotFound", err)
	}
	os.RemoveAll(filepath.Join(dir, "index.json"))
	if _, err := Open(context.Background(), LayoutPrefix+dir, Options{}); err == nil {
		t.Error("layout without index.json opened")
	}
}
