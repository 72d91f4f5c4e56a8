package imagestore

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/racklet/racklet-boot/image/artifact"
)

// FuzzManifest feeds arbitrary OCI manifests and image manifests to the
// checks a signed digest's content goes through: they never panic, and
// whatever they accept names a boot, root and verity blob that the image
// manifest pins with the same digests and sizes.
func FuzzManifest(f *testing.F) {
	desc := func(mt, title string, b byte) v1.Descriptor {
		h := v1.Hash{Algorithm: "sha256", Hex: hex64(b)}
		d := v1.Descriptor{MediaType: types.MediaType(mt), Size: int64(b), Digest: h}
		if title != "" {
			d.Annotations = map[string]string{"org.opencontainers.image.title": title}
		}
		return d
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: desc(artifact.ConfigMediaType, "", 1),
		Layers: []v1.Descriptor{desc(artifact.BootMediaType, "boot.vfat", 2), desc(artifact.RootMediaType, "root.squashfs", 3), desc(artifact.VerityMediaType, "root.verity", 4)}}
	good, _ := json.Marshal(m)
	cfg := `{"apiVersion":"racklet.io/image/v1alpha1","boot":{"file":"boot.vfat","size":2,"digest":"sha256:` + hex64(2) + `"},` +
		`"root":{"file":"root.squashfs","size":3,"digest":"sha256:` + hex64(3) + `"},"verity":{"file":"root.verity","size":4,"digest":"sha256:` + hex64(4) + `"}}`
	f.Add(good, []byte(cfg))
	f.Add(good, []byte(`{"apiVersion":"racklet.io/image/v1alpha1"}`))
	signed := m
	signed.Layers = append(append([]v1.Descriptor{}, m.Layers...), desc(artifact.BootSigMediaType, "boot.sig", 5))
	goodSigned, _ := json.Marshal(signed)
	f.Add(goodSigned, []byte(strings.TrimSuffix(cfg, "}")+`,"bootSig":{"file":"boot.sig","size":5,"digest":"sha256:`+hex64(5)+`","keyId":"sha256:`+hex64(6)+`","ts":1}}`))
	f.Add([]byte(`{"config":{"mediaType":"`+artifact.ConfigMediaType+`"},"layers":[{"mediaType":"x","annotations":{"org.opencontainers.image.title":"boot.vfat"}}]}`), []byte("{}"))
	f.Add([]byte("null"), []byte("null"))
	f.Fuzz(func(t *testing.T, raw, config []byte) {
		d, _, _ := v1.SHA256(bytesReader(raw))
		o := bytesOrigin{d: d, b: raw}
		_, descs, err := readManifest(context.Background(), o, d)
		if err != nil {
			if !errors.Is(err, ErrNotArtifact) && !errors.Is(err, ErrTampered) {
				t.Fatalf("readManifest error %v wraps neither ErrNotArtifact nor ErrTampered", err)
			}
			return
		}
		if len(descs) != 4 && len(descs) != 5 {
			t.Fatalf("accepted manifest with %d descriptors", len(descs))
		}
		im, err := checkConfig(config, d, descs)
		if err != nil {
			if !errors.Is(err, ErrNotArtifact) && !errors.Is(err, ErrTampered) {
				t.Fatalf("checkConfig error %v wraps neither ErrNotArtifact nor ErrTampered", err)
			}
			return
		}
		pinned := []string{im.Boot.Digest, im.Root.Digest, im.Verity.Digest}
		if im.BootSig != nil {
			pinned = append(pinned, im.BootSig.Digest)
		}
		if len(pinned) != len(descs)-1 {
			t.Fatalf("accepted image manifest pinning %d blobs for %d layers", len(pinned), len(descs)-1)
		}
		for i, b := range pinned {
			if b != descs[i+1].Digest.String() {
				t.Fatalf("accepted image manifest pins %s, layer is %s", b, descs[i+1].Digest)
			}
		}
	})
}

func hex64(b byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i := range out {
		out[i] = digits[int(b)%16]
	}
	return string(out)
}

func bytesReader(b []byte) *bytesR { return &bytesR{b: b} }

// bytesR is an io.Reader over b.
type bytesR struct{ b []byte }

func (r *bytesR) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
