package sign

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/signature"
)

// testRegistry starts an in-memory registry and returns its host.
func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushRandom pushes a random image to host/repo:tag and returns its digest reference.
func pushRandom(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(host+"/"+repo+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// newKey makes a signer and the verifier a .pub file of it would give.
func newKey(t *testing.T, kind KeyType) (signature.SignerVerifier, signature.Verifier) {
	t.Helper()
	priv, err := GenerateKey(kind)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := MarshalPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sv, v
}

// sigLayers returns the layers of ref's signature image.
func sigLayers(t *testing.T, ref name.Digest) []v1.Descriptor {
	t.Helper()
	d, _ := v1.NewHash(ref.DigestStr())
	img, err := remote.Image(ref.Context().Tag(SignatureTag(d)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Layers
}

func TestSignVerifyRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []KeyType{ECDSAP256, Ed25519} {
		t.Run(string(kind), func(t *testing.T) {
			ref := pushRandom(t, testRegistry(t), "os/pi")
			sv, v := newKey(t, kind)
			if err := Sign(ctx, ref, sv); err != nil {
				t.Fatal(err)
			}
			got, err := Check(ctx, ref, []signature.Verifier{v})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Payload.Identity != ref.Context().Name() || got[0].Payload.Digest.String() != ref.DigestStr() {
				t.Fatalf("verified %+v, want one signature of %s", got, ref)
			}
			layers := sigLayers(t, ref)
			if len(layers) != 1 || layers[0].MediaType != SimpleSigningMediaType || layers[0].Annotations[SignatureAnnotation] == "" {
				t.Fatalf("signature layers %+v, want one cosign simple signing layer", layers)
			}
		})
	}
}

func TestVerifyFailures(t *testing.T) {
	ctx := context.Background()
	host := testRegistry(t)
	signer, _ := newKey(t, ECDSAP256)
	_, other := newKey(t, ECDSAP256)
	_, edOther := newKey(t, Ed25519)
	_, good := signer, mustVerifier(t, signer)

	unsigned := pushRandom(t, host, "unsigned")
	signed := pushRandom(t, host, "signed")
	if err := Sign(ctx, signed, signer); err != nil {
		t.Fatal(err)
	}
	// A valid signature over another digest, stored under this image's tag.
	target := pushRandom(t, host, "moved")
	elsewhere := pushRandom(t, host, "moved")
	body, err := makePayload(elsewhere, "")
	if err != nil {
		t.Fatal(err)
	}
	td, _ := v1.NewHash(target.DigestStr())
	if err := signInto(ctx, newRegistryStore(target.Context(), nil), td, body, signer); err != nil {
		t.Fatal(err)
	}
	// A signature image whose payload was edited after signing.
	tampered := pushRandom(t, host, "tampered")
	if err := Sign(ctx, tampered, signer); err != nil {
		t.Fatal(err)
	}
	tamper(t, tampered)

	for name, tc := range map[string]struct {
		ref  name.Digest
		keys []signature.Verifier
		want error
	}{
		"no signature":      {unsigned, []signature.Verifier{good}, ErrNoSignature},
		"wrong key":         {signed, []signature.Verifier{other}, ErrBadSignature},
		"wrong key type":    {signed, []signature.Verifier{edOther}, ErrBadSignature},
		"other digest":      {target, []signature.Verifier{good}, ErrDigestMismatch},
		"tampered payload":  {tampered, []signature.Verifier{good}, ErrBadSignature},
		"good among others": {signed, []signature.Verifier{other, good}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			err := Verify(ctx, tc.ref, tc.keys)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func mustVerifier(t *testing.T, sv signature.SignerVerifier) signature.Verifier {
	t.Helper()
	pub, err := sv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ParsePublicKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// tamper rewrites ref's signature image with an edited payload and the original signature.
func tamper(t *testing.T, ref name.Digest) {
	t.Helper()
	l := sigLayers(t, ref)[0]
	d, _ := v1.NewHash(ref.DigestStr())
	body, err := makePayload(ref, "evil.example/os/pi")
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(emptySignatures(), mutate.Addendum{
		Layer:       static.NewLayer(body, SimpleSigningMediaType),
		Annotations: l.Annotations,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref.Context().Tag(SignatureTag(d)), img); err != nil {
		t.Fatal(err)
	}
}

func TestSignAppendsAndDeduplicates(t *testing.T) {
	ctx := context.Background()
	ref := pushRandom(t, testRegistry(t), "os/pi")
	ec, ecPub := newKey(t, ECDSAP256)
	ed, edPub := newKey(t, Ed25519)
	for _, s := range []signature.Signer{ec, ed, ed} {
		if err := Sign(ctx, ref, s); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(sigLayers(t, ref)); n != 2 {
		t.Fatalf("signature image has %d layers, want 2 (Ed25519 twice is one signature)", n)
	}
	for name, keys := range map[string][]signature.Verifier{"ecdsa": {ecPub}, "ed25519": {edPub}} {
		if err := Verify(ctx, ref, keys); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	got, err := Check(ctx, ref, []signature.Verifier{ecPub, edPub})
	if err != nil || len(got) != 2 || got[0].Key != 0 || got[1].Key != 1 {
		t.Fatalf("Check = %+v, %v; want both signatures, one per key", got, err)
	}
}

func TestSignRefusesMissingImage(t *testing.T) {
	host := testRegistry(t)
	ref, err := name.NewDigest(host+"/nothing@sha256:"+strings.Repeat("ab", 32), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := newKey(t, ECDSAP256)
	if err := Sign(context.Background(), ref, sv); err == nil {
		t.Fatal("Sign of a missing image succeeded")
	}
}
