package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/internal/testutil"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/disk"
	"github.com/racklet/racklet-boot/image/imagetest"
)

// built returns an output directory built from the test base image, with a disk image.
func built(t *testing.T) (string, *image.Manifest) {
	t.Helper()
	testutil.NeedTool(t, "busybox")
	ref, err := imagetest.WriteLayout(filepath.Join(t.TempDir(), "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	m, err := image.Build(context.Background(), image.Spec{Base: ref, Disk: true,
		DiskSizes: disk.Sizes{Control: 64 << 20, Boot: 80 << 20, Root: 16 << 20, Data: 4 << 20}}, out, image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return out, m
}

func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	for _, f := range []string{image.ManifestFile, image.BootFile, image.RootFile, image.VerityFile, image.DiskFile} {
		x, _ := os.ReadFile(filepath.Join(a, f))
		y, _ := os.ReadFile(filepath.Join(b, f))
		if len(x) == 0 || !bytes.Equal(x, y) {
			t.Errorf("%s differs after the round trip (%d vs %d bytes)", f, len(x), len(y))
		}
	}
}

func TestRegistryRoundTripWithSkopeo(t *testing.T) {
	skopeo := testutil.NeedTool(t, "skopeo")
	out, m := built(t)
	reg := imagetest.StartRegistry(t)
	ref := reg + "/racklet/node:v1"
	ctx := context.Background()
	opts := Options{Insecure: true}
	d, err := Push(ctx, out, ref, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "--raw", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --raw: %v", err)
	}
	var man struct {
		MediaType, ArtifactType string
		Config                  struct{ MediaType string }
		Layers                  []struct {
			MediaType   string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(raw, &man); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range man.Layers {
		got = append(got, l.Annotations["org.opencontainers.image.title"]+" "+l.MediaType)
	}
	want := []string{"boot.vfat " + BootMediaType, "root.squashfs " + RootMediaType, "root.verity " + VerityMediaType, "disk.img.zst " + DiskMediaType}
	if diff := cmp.Diff(want, got); diff != "" || man.ArtifactType != ArtifactType || man.Config.MediaType != ConfigMediaType {
		t.Errorf("skopeo sees artifactType %q config %q layers (-want +got):\n%s", man.ArtifactType, man.Config.MediaType, diff)
	}
	cfg, err := exec.Command(skopeo, "inspect", "--tls-verify=false", "--config", "--raw", "docker://"+ref).Output()
	if err != nil {
		t.Fatalf("skopeo inspect --config: %v", err)
	}
	mf, _ := os.ReadFile(filepath.Join(out, image.ManifestFile))
	if !bytes.Equal(cfg, mf) {
		t.Error("config blob is not manifest.json")
	}
	byDigest := reg + "/racklet/node@" + d.String()
	got2, err := Inspect(ctx, byDigest, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got2.Verity.RootHash != m.Verity.RootHash {
		t.Errorf("inspect root hash %s, want %s", got2.Verity.RootHash, m.Verity.RootHash)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	if _, err := Pull(ctx, ref, pulled, opts); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, out, pulled)
}

func TestLayoutRoundTrip(t *testing.T) {
	out, _ := built(t)
	ref := "oci-layout:" + filepath.Join(t.TempDir(), "store") + ":v2"
	ctx := context.Background()
	if _, err := Push(ctx, out, ref, Options{}); err != nil {
		t.Fatal(err)
	}
	pulled := filepath.Join(t.TempDir(), "pulled")
	if _, err := Pull(ctx, ref, pulled, Options{}); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, out, pulled)
}

func TestPushRefusesTamperedOutput(t *testing.T) {
	out, _ := built(t)
	f, _ := os.OpenFile(filepath.Join(out, image.RootFile), os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, 200)
	f.Close()
	if _, err := Push(context.Background(), out, "oci-layout:"+t.TempDir(), Options{}); err == nil {
		t.Fatal("pushed an output directory whose root does not match its manifest")
	}
}

func TestPullRefusesOtherImages(t *testing.T) {
	base, err := imagetest.WriteLayout(filepath.Join(t.TempDir(), "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Pull(context.Background(), base, filepath.Join(t.TempDir(), "x"), Options{})
	if !errors.Is(err, ErrNotArtifact) {
		t.Fatalf("error %v, want ErrNotArtifact", err)
	}
}
