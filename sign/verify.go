package sign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// Sentinel errors Verify wraps; test with errors.Is. When several signatures fail for
// different reasons, the error wraps each reason.
var (
	// ErrNoSignature: the image has no signature image, or it holds no signatures.
	ErrNoSignature = errors.New("image is not signed")
	// ErrBadSignature: no signature verifies under the given keys, or a payload does not
	// match its digest.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrDigestMismatch: a validly signed payload covers another manifest digest.
	ErrDigestMismatch = errors.New("signature is for another image digest")
)

// Verified is one signature that verified.
type Verified struct {
	// Payload is what the signature claims; Payload.Digest is the digest verified.
	Payload Payload
	// Layer is the digest of the signature's payload layer.
	Layer v1.Hash
	// Key is the index, in the verifiers given, of the key that verified it.
	Key int
}

// Verify checks that the manifest digest ref carries at least one signature, in its
// repository's "sha256-<hex>.sig" image, that verifies under one of verifiers and covers
// exactly that digest.
func Verify(ctx context.Context, ref name.Digest, verifiers []signature.Verifier, opts ...remote.Option) error {
	_, err := Check(ctx, ref, verifiers, opts...)
	return err
}

// Check is Verify that also returns the signatures that verified.
func Check(ctx context.Context, ref name.Digest, verifiers []signature.Verifier, opts ...remote.Option) ([]Verified, error) {
	d, err := v1.NewHash(ref.DigestStr())
	if err != nil {
		return nil, fmt.Errorf("digest of %s: %w", ref, err)
	}
	return check(ctx, newRegistryStore(ref.Context(), opts), d, verifiers)
}

// VerifyLayout checks the signatures of digest d stored in the OCI layout dir.
func VerifyLayout(ctx context.Context, dir string, d v1.Hash, verifiers []signature.Verifier) ([]Verified, error) {
	return check(ctx, &layoutStore{dir: dir}, d, verifiers)
}

func isNoImage(err error) bool { return errors.Is(err, errNoImage) }

func check(ctx context.Context, s store, d v1.Hash, verifiers []signature.Verifier) ([]Verified, error) {
	if len(verifiers) == 0 {
		return nil, errors.New("verify: no public keys given")
	}
	tag := SignatureTag(d)
	img, err := s.get(ctx, tag)
	if err != nil {
		if isNoImage(err) {
			return nil, fmt.Errorf("%s: no signature image %s: %w", d, tag, ErrNoSignature)
		}
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("read signature image %s:%s: %w", s.where(), tag, err)
	}
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("signature image %s:%s holds %d layers, more than %d", s.where(), tag, len(m.Layers), maxLayers)
	}
	var (
		ok   []Verified
		errs []error
		seen int
	)
	for i, l := range m.Layers {
		if string(l.MediaType) != SimpleSigningMediaType {
			continue
		}
		seen++
		v, err := checkLayer(ctx, img, l, d, verifiers)
		if err != nil {
			errs = append(errs, fmt.Errorf("signature %d (%s): %w", i, l.Digest, err))
			continue
		}
		ok = append(ok, v)
	}
	if len(ok) > 0 {
		return ok, nil
	}
	if seen == 0 {
		return nil, fmt.Errorf("%s: signature image %s holds no signatures: %w", d, tag, ErrNoSignature)
	}
	return nil, fmt.Errorf("%s: none of %d signatures in %s:%s is valid for the given keys: %w", d, seen, s.where(), tag, errors.Join(errs...))
}

// checkLayer verifies one signature layer: payload digest, then signature, then claims.
func checkLayer(ctx context.Context, img v1.Image, l v1.Descriptor, d v1.Hash, verifiers []signature.Verifier) (Verified, error) {
	body, err := readPayload(img, l)
	if err != nil {
		return Verified{}, err
	}
	b64, found := l.Annotations[SignatureAnnotation]
	if !found {
		return Verified{}, fmt.Errorf("no %s annotation: %w", SignatureAnnotation, ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return Verified{}, fmt.Errorf("signature is not base64: %v: %w", err, ErrBadSignature)
	}
	key := -1
	for i, v := range verifiers {
		if v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body), options.WithContext(ctx)) == nil {
			key = i
			break
		}
	}
	if key < 0 {
		return Verified{}, fmt.Errorf("not signed by any of the %d keys given: %w", len(verifiers), ErrBadSignature)
	}
	p, err := ParsePayload(body)
	if err != nil {
		return Verified{}, fmt.Errorf("%v: %w", err, ErrBadSignature)
	}
	if p.Digest != d {
		return Verified{}, fmt.Errorf("payload covers %s: %w", p.Digest, ErrDigestMismatch)
	}
	return Verified{Payload: p, Layer: l.Digest, Key: key}, nil
}

// readPayload reads a layer's bytes, bounded, and checks them against its digest.
func readPayload(img v1.Image, l v1.Descriptor) ([]byte, error) {
	if l.Size > maxPayload {
		return nil, fmt.Errorf("payload of %d bytes exceeds %d: %w", l.Size, maxPayload, ErrBadSignature)
	}
	layer, err := img.LayerByDigest(l.Digest)
	if err != nil {
		return nil, fmt.Errorf("fetch payload: %w", err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetch payload: %w", err)
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxPayload+1))
	if err != nil {
		return nil, fmt.Errorf("fetch payload: %v: %w", err, ErrBadSignature)
	}
	sum := sha256.Sum256(body)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != l.Digest.String() || int64(len(body)) != l.Size {
		return nil, fmt.Errorf("payload is %d bytes %s, descriptor says %d bytes %s: %w", len(body), got, l.Size, l.Digest, ErrBadSignature)
	}
	return body, nil
}
