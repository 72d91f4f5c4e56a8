package imagestore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/sign"
)

func TestEnsureFromLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	signed, err := artifact.Push(ctx, built(t), "oci-layout:"+dir+":v1", artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Push(ctx, variant(t, "console=ttyS0"), "oci-layout:"+dir+":unsigned", artifact.Options{}); err != nil {
		t.Fatal(err)
	}
	s, v := key(t)
	if err := sign.SignLayout(ctx, dir, signed, "registry.lan/racklet/os", s); err != nil {
		t.Fatal(err)
	}
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Ensure(ctx, "oci-layout:"+dir+":v1", []v1Verifier{v})
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != signed {
		t.Errorf("digest %s, want %s", img.Digest, signed)
	}
	if _, err := st.Ensure(ctx, "oci-layout:"+dir+":unsigned", []v1Verifier{v}); !errors.Is(err, sign.ErrNoSignature) || !errors.Is(err, ErrUntrusted) {
		t.Errorf("unsigned layout image: %v, want ErrUntrusted and sign.ErrNoSignature", err)
	}
	// Air-gapped: a registry reference looked up by its tag in Options.Layout.
	gapped, err := Open(t.TempDir(), Options{Layout: dir})
	if err != nil {
		t.Fatal(err)
	}
	img, err = gapped.Ensure(ctx, "registry.lan/racklet/os:v1", []v1Verifier{v})
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != signed {
		t.Errorf("layout lookup digest %s, want %s", img.Digest, signed)
	}
	if _, err := gapped.Ensure(ctx, "registry.lan/racklet/os:missing", []v1Verifier{v}); err == nil || IsRefusal(err) {
		t.Errorf("missing tag: %v, want a lookup error that is not a refusal", err)
	}
}
