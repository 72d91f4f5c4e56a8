package sign

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/sigstore/sigstore/pkg/signature"
)

// FuzzCheckLayer feeds the signature check arbitrary payloads and
// signatures, against a fixed Ed25519 key (deterministic signatures, so the
// corpus stays meaningful): it never panics, and it accepts a layer only if
// it carries exactly the payload the key signed, for the digest checked.
// Against another digest even that payload is refused.
func FuzzCheckLayer(f *testing.F) {
	seed := sha256.Sum256([]byte("racklet fuzz signing key"))
	sv, err := signature.LoadED25519SignerVerifier(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		f.Fatal(err)
	}
	d, err := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		f.Fatal(err)
	}
	other, _ := v1.NewHash("sha256:" + strings.Repeat("cd", 32))
	ref, err := name.NewDigest("reg.lan/racklet/os@" + d.String())
	if err != nil {
		f.Fatal(err)
	}
	body, err := makePayload(ref, "")
	if err != nil {
		f.Fatal(err)
	}
	sig, err := sv.SignMessage(bytes.NewReader(body))
	if err != nil {
		f.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(sig)
	f.Add(body, b64, false)
	f.Add(body, b64, true)
	f.Add(bytes.Replace(body, []byte("ab"), []byte("cd"), -1), b64, false)
	f.Add(body, b64[:len(b64)-4]+"AAA=", false)
	f.Add([]byte(`{"critical":null}`), "", false)
	f.Fuzz(func(t *testing.T, payload []byte, sigB64 string, againstOther bool) {
		img, err := mutate.Append(emptySignatures(), mutate.Addendum{
			Layer:       static.NewLayer(payload, SimpleSigningMediaType),
			Annotations: map[string]string{SignatureAnnotation: sigB64},
		})
		if err != nil {
			t.Fatal(err)
		}
		m, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		want := d
		if againstOther {
			want = other
		}
		v, err := checkLayer(context.Background(), img, m.Layers[0], want, []signature.Verifier{sv})
		if err != nil {
			return
		}
		if !bytes.Equal(payload, body) || againstOther || v.Payload.Digest != d {
			t.Fatalf("accepted payload %q with signature %q for %s", payload, sigB64, want)
		}
	})
}
