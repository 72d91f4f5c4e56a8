package sign

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/sigstore/sigstore/pkg/signature"
)

// writeLayout writes a random image named "v1" into a new OCI layout and returns the
// layout's directory and the image digest.
func writeLayout(t *testing.T) (string, v1.Hash) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: "v1"})); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, d
}

func TestLayoutSignVerify(t *testing.T) {
	ctx := context.Background()
	dir, d := writeLayout(t)
	if got, err := ResolveLayout(dir, "v1"); err != nil || got != d {
		t.Fatalf("ResolveLayout(v1) = %s, %v; want %s", got, err, d)
	}
	if got, err := ResolveLayout(dir, d.String()); err != nil || got != d {
		t.Fatalf("ResolveLayout(digest) = %s, %v; want %s", got, err, d)
	}
	if _, err := ResolveLayout(dir, "v2"); err == nil {
		t.Fatal("ResolveLayout found a tag that is not there")
	}
	sv, v := newKey(t, Ed25519)
	_, other := newKey(t, ECDSAP256)
	if _, err := VerifyLayout(ctx, dir, d, []signature.Verifier{v}); !errors.Is(err, ErrNoSignature) {
		t.Fatalf("VerifyLayout before signing = %v, want ErrNoSignature", err)
	}
	if err := SignLayout(ctx, dir, d, "reg.lan/os/pi", sv); err != nil {
		t.Fatal(err)
	}
	got, err := VerifyLayout(ctx, dir, d, []signature.Verifier{v})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Payload.Identity != "reg.lan/os/pi" || got[0].Payload.Digest != d {
		t.Fatalf("verified %+v, want one signature of %s claiming reg.lan/os/pi", got, d)
	}
	if _, err := VerifyLayout(ctx, dir, d, []signature.Verifier{other}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyLayout with another key = %v, want ErrBadSignature", err)
	}
	if err := SignLayout(ctx, dir, v1.Hash{Algorithm: "sha256", Hex: d.Hex[:62] + "00"}, "", sv); err == nil {
		t.Fatal("SignLayout signed a digest the layout does not hold")
	}
	// Corrupt the payload blob on disk: the digest check must catch it.
	got2, _ := VerifyLayout(ctx, dir, d, []signature.Verifier{v})
	blob := filepath.Join(dir, "blobs", got2[0].Layer.Algorithm, got2[0].Layer.Hex)
	raw, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-2] ^= 1
	if err := os.WriteFile(blob, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyLayout(ctx, dir, d, []signature.Verifier{v}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("VerifyLayout of a corrupted payload = %v, want ErrBadSignature", err)
	}
}
