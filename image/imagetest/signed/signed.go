// Package signed makes signed racklet images for tests of the servers that
// serve them: small images built from imagetest's base (a fake agent; each
// tag its own config.txt and /etc/racklet-version, so boot partitions and
// roots differ), pushed to an OCI layout and signed there, with the public
// key a rack config's trust rule names.
package signed

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/sign"
)

// Images are the signed images of one Layout call.
type Images struct {
	// Layout is the OCI layout directory: refer to a tag as
	// "oci-layout:" + Layout + ":" + tag.
	Layout string
	// PublicKey is the signing key's public half, PEM.
	PublicKey []byte
	// Manifests are the image manifests by tag (root and boot digests).
	Manifests map[string]*image.Manifest
	// Digests are the OCI manifest digests by tag (what is signed and served).
	Digests map[string]string
}

// Ref is the layout reference of a tag.
func (im *Images) Ref(tag string) string { return "oci-layout:" + im.Layout + ":" + tag }

// Layout builds one image per tag under dir, pushes each to dir/layout and
// signs it with a fresh ECDSA P-256 key.
func Layout(t testing.TB, dir string, tags ...string) *Images {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testutil.Unavailable(t, "no /bin/busybox (Debian package busybox-static): "+err.Error())
	}
	ctx := context.Background()
	base, err := imagetest.WriteLayout(filepath.Join(dir, "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := imagetest.FakeAgent(dir, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	priv, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	im := &Images{Layout: filepath.Join(dir, "layout"), Manifests: map[string]*image.Manifest{}, Digests: map[string]string{}}
	if im.PublicKey, err = sign.MarshalPublicKey(priv.Public()); err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		over := filepath.Join(dir, "overlay-"+tag)
		if err := os.MkdirAll(filepath.Join(over, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(over, "etc", "racklet-version"), []byte(tag+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "build-"+tag)
		spec := image.Spec{Base: base, Agent: agent, Overlay: over, ConfigTxt: "arm_64bit=1\nkernel=kernel8.img\n# " + tag + "\n"}
		m, err := image.Build(ctx, spec, out, image.Options{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := artifact.Push(ctx, out, im.Ref(tag), artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := sign.SignLayout(ctx, im.Layout, d, "", signer); err != nil {
			t.Fatal(err)
		}
		im.Manifests[tag], im.Digests[tag] = m, d.String()
	}
	return im
}
