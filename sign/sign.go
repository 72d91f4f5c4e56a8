package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Sign signs the manifest digest ref and appends the signature to the signature image
// "sha256-<hex>.sig" in ref's repository, keeping the signatures already there. The payload
// claims ref's repository as its identity, as cosign sign does. The image ref names must
// exist in the registry.
func Sign(ctx context.Context, ref name.Digest, signer signature.Signer, opts ...remote.Option) error {
	ro := append(append([]remote.Option{}, opts...), remote.WithContext(ctx))
	if _, err := remote.Head(ref, ro...); err != nil {
		return fmt.Errorf("find image to sign %s: %w", ref, err)
	}
	d, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return fmt.Errorf("digest of %s: %w", ref, err)
	}
	body, err := makePayload(ref, "")
	if err != nil {
		return err
	}
	return signInto(ctx, newRegistryStore(ref.Context(), opts), d, body, signer)
}

// SignLayout signs the image with digest d in the OCI layout dir and stores the signature
// image in the same layout, named "sha256-<hex>.sig". identity is the docker-reference the
// payload claims (where the image is meant to be pulled from); empty claims "localhost/image".
func SignLayout(ctx context.Context, dir string, d v1.Hash, identity string, signer signature.Signer) error {
	s := &layoutStore{dir: dir}
	if err := s.has(d); err != nil {
		return err
	}
	if identity == "" {
		identity = "localhost/image"
	}
	ref, err := name.NewDigest("localhost/image@" + d.String())
	if err != nil {
		return fmt.Errorf("digest %s: %w", d, err)
	}
	body, err := makePayload(ref, identity)
	if err != nil {
		return err
	}
	return signInto(ctx, s, d, body, signer)
}

// signInto signs body and appends it to the signature image of d in s.
func signInto(ctx context.Context, s store, d v1.Hash, body []byte, signer signature.Signer) error {
	sig, err := signer.SignMessage(bytes.NewReader(body), options.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("sign %s: %w", d, err)
	}
	tag := SignatureTag(d)
	base, err := s.get(ctx, tag)
	if err != nil {
		if !isNoImage(err) {
			return err
		}
		base = emptySignatures()
	}
	layer := static.NewLayer(body, SimpleSigningMediaType)
	b64 := base64.StdEncoding.EncodeToString(sig)
	if dup, err := hasSignature(base, layer, b64); err != nil {
		return fmt.Errorf("read signature image %s:%s: %w", s.where(), tag, err)
	} else if dup {
		return nil
	}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:       layer,
		Annotations: map[string]string{SignatureAnnotation: b64},
	})
	if err != nil {
		return fmt.Errorf("add signature to %s:%s: %w", s.where(), tag, err)
	}
	return s.put(ctx, tag, img)
}

// hasSignature reports whether img already holds layer with signature b64 (Ed25519
// signatures are deterministic: signing twice gives the same layer).
func hasSignature(img v1.Image, layer v1.Layer, b64 string) (bool, error) {
	m, err := img.Manifest()
	if err != nil {
		return false, err
	}
	if len(m.Layers) >= maxLayers {
		return false, fmt.Errorf("signature image already holds %d signatures (limit %d)", len(m.Layers), maxLayers)
	}
	ld, err := layer.Digest()
	if err != nil {
		return false, err
	}
	for _, l := range m.Layers {
		if l.Digest == ld && l.Annotations[SignatureAnnotation] == b64 {
			return true, nil
		}
	}
	return false, nil
}

// emptySignatures is the base a first signature is appended to: an OCI manifest with an
// OCI config, as cosign makes it.
func emptySignatures() v1.Image {
	return mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
}
