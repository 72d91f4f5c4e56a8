package sign

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/internal/ociref"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"
)

// TestCopyKeepsSignatures moves a signed image from a registry into an OCI
// layout (the air-gapped rack) and on into another repository: the
// signature verifies at every stop, and an unsigned image copies with none.
func TestCopyKeepsSignatures(t *testing.T) {
	ctx := context.Background()
	host := testRegistry(t)
	ref := pushRandom(t, host, "racklet/os")
	sv, v := newKey(t, Ed25519)
	if err := Sign(ctx, ref, sv); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "airgap")
	res, err := Copy(ctx, host+"/racklet/os:v1", "oci-layout:"+dir+":v1", ociref.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest.String() != ref.DigestStr() || res.Signatures != 1 {
		t.Fatalf("copy to layout = %+v, want digest %s and 1 signature", res, ref.DigestStr())
	}
	if _, err := VerifyLayout(ctx, dir, res.Digest, []signature.Verifier{v}); err != nil {
		t.Fatalf("signature does not verify in the layout: %v", err)
	}
	if _, err := Copy(ctx, "oci-layout:"+dir+":v1", host+"/mirror/os:v1", ociref.Options{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	back, err := name.NewDigest(host+"/mirror/os@"+res.Digest.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(ctx, back, []signature.Verifier{v}); err != nil {
		t.Fatalf("signature does not verify after the round trip: %v", err)
	}

	unsigned := pushRandom(t, host, "racklet/unsigned")
	res, err = Copy(ctx, host+"/racklet/unsigned:v1", "oci-layout:"+dir+":u", ociref.Options{Insecure: true})
	if err != nil || res.Signatures != 0 || res.Digest.String() != unsigned.DigestStr() {
		t.Fatalf("copy of an unsigned image = %+v, %v; want it copied with 0 signatures", res, err)
	}
	if _, err := Copy(ctx, "oci-layout:"+filepath.Join(t.TempDir(), "none")+":v1", "oci-layout:"+dir+":x", ociref.Options{Insecure: true}); err == nil {
		t.Error("copy from a missing layout succeeded")
	}
}
