package sign

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature/payload"
)

// Names cosign gives the parts of a signature image.
const (
	// SimpleSigningMediaType is the media type of a signature layer.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// SignatureAnnotation holds a layer's base64 signature.
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	// sigSuffix ends the tag of a signature image.
	sigSuffix = ".sig"
	// maxPayload bounds a payload read from a registry; real ones are a few hundred bytes.
	maxPayload = 1 << 20
	// maxLayers bounds the signatures read from one signature image, as cosign does.
	maxLayers = 1000
)

// SignatureTag is the tag of the signature image for digest d: "sha256-<hex>.sig".
func SignatureTag(d v1.Hash) string {
	return d.Algorithm + "-" + d.Hex + sigSuffix
}

// Payload is what a signature claims: the image's manifest digest and the reference the
// signer gave it.
type Payload struct {
	// Identity is the claimed docker-reference, usually the repository signed in.
	Identity string
	// Digest is the manifest digest the signature covers.
	Digest v1.Hash
	// Optional holds the payload's optional annotations (nil when there are none).
	Optional map[string]any
}

// makePayload renders the simple signing payload for ref as cosign does: identity is the
// repository name unless claimed is set.
func makePayload(ref name.Digest, claimed string) ([]byte, error) {
	b, err := json.Marshal(payload.Cosign{Image: ref, ClaimedIdentity: claimed})
	if err != nil {
		return nil, fmt.Errorf("render signature payload: %w", err)
	}
	return b, nil
}

// ParsePayload reads a simple signing payload. It refuses documents of another type and
// digests that are not well-formed, but does not check what the digest is: callers compare.
func ParsePayload(b []byte) (Payload, error) {
	var sci payload.SimpleContainerImage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&sci); err != nil {
		return Payload{}, fmt.Errorf("signature payload is not JSON: %w", err)
	}
	if dec.More() {
		return Payload{}, fmt.Errorf("signature payload has data after its JSON document")
	}
	if sci.Critical.Type != payload.CosignSignatureType {
		return Payload{}, fmt.Errorf("signature payload has type %q, want %q", sci.Critical.Type, payload.CosignSignatureType)
	}
	raw := sci.Critical.Image.DockerManifestDigest
	if !strings.HasPrefix(raw, "sha256:") {
		return Payload{}, fmt.Errorf("signature payload digest %q is not sha256", raw)
	}
	d, err := v1.NewHash(raw)
	if err != nil {
		return Payload{}, fmt.Errorf("signature payload digest %q: %w", raw, err)
	}
	return Payload{Identity: sci.Critical.Identity.DockerReference, Digest: d, Optional: sci.Optional}, nil
}
