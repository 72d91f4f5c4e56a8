package imagestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/racklet/racklet-boot/sign"
)

// Ensure makes the image ref available: it resolves ref to a digest,
// verifies that digest's signature under verifiers (the keys the trust rule
// of ref's repository names) before fetching anything else, then fetches
// the manifest, the image manifest and the boot, root and verity blobs into
// the store, checking every digest. An image already stored and verified
// under the same keys costs only the tag resolution.
//
// Refusals wrap ErrUntrusted (as a *TrustError, which also wraps sign's
// reason), ErrTampered or ErrNotArtifact; IsRefusal tells them from
// registries that cannot be reached.
func (s *Store) Ensure(ctx context.Context, ref string, verifiers []signature.Verifier) (*Image, error) {
	if len(verifiers) == 0 {
		return nil, &TrustError{Ref: ref, Err: errors.New("no trusted keys are configured for it")}
	}
	keys, err := keySetID(verifiers)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	d, o, err := s.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	v, err, _ := s.flight.Do(d.String()+" "+keys, func() (any, error) {
		return s.ensure(ctx, ref, d, o, verifiers, keys)
	})
	if err != nil {
		return nil, err
	}
	img := *v.(*Image)
	img.Ref = ref
	return &img, nil
}

func (s *Store) ensure(ctx context.Context, ref string, d v1.Hash, o origin, vs []signature.Verifier, keys string) (*Image, error) {
	s.mu.Lock()
	ok := s.verified[d.String()+" "+keys]
	s.mu.Unlock()
	if ok {
		if img, err := s.load(ctx, d); err == nil {
			return img, nil
		}
	}
	if err := o.verify(ctx, d, vs); err != nil {
		if errors.Is(err, sign.ErrNoSignature) || errors.Is(err, sign.ErrBadSignature) || errors.Is(err, sign.ErrDigestMismatch) {
			s.log.WarnContext(ctx, "image refused", "ref", ref, "digest", d.String(), "err", err)
			return nil, &TrustError{Ref: ref, Digest: d.String(), Err: err}
		}
		return nil, fmt.Errorf("verify signature of image %s (%s): %w", ref, d, err)
	}
	img, err := s.pull(ctx, d, o)
	if err != nil {
		s.log.WarnContext(ctx, "image not stored", "ref", ref, "digest", d.String(), "err", err)
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	s.mu.Lock()
	s.verified[d.String()+" "+keys] = true
	s.mu.Unlock()
	s.log.InfoContext(ctx, "image stored", "ref", ref, "digest", d.String(), "from", o.String())
	return img, nil
}

// pull fetches the verified manifest d and its blobs from o.
func (s *Store) pull(ctx context.Context, d v1.Hash, o origin) (*Image, error) {
	raw, descs, err := readManifest(ctx, o, d)
	if err != nil {
		return nil, err
	}
	self := v1.Descriptor{Digest: d, Size: int64(len(raw))}
	if err := s.writeBlob(ctx, bytesOrigin{d: d, b: raw}, self); err != nil {
		return nil, err
	}
	if descs[0].Size > maxManifestSize {
		return nil, fmt.Errorf("%w: image manifest %s is %d bytes", ErrNotArtifact, descs[0].Digest, descs[0].Size)
	}
	for _, desc := range descs {
		if err := s.writeBlob(ctx, o, desc); err != nil {
			return nil, err
		}
		if desc.Digest == descs[0].Digest {
			// Check the image manifest before fetching the big blobs.
			if _, err := s.image(d, self, descs); err != nil {
				return nil, err
			}
		}
	}
	return s.image(d, self, descs)
}

// load returns a stored image without network I/O; it fails when any of its
// blobs is missing or damaged (and drops a damaged one). Each blob is hashed
// in full the first time this Store loads it and again only when its file
// changed; otherwise a load costs one stat per blob.
func (s *Store) load(ctx context.Context, d v1.Hash) (*Image, error) {
	raw, descs, err := readManifest(ctx, localOrigin{s}, d)
	if err != nil {
		return nil, err
	}
	for _, desc := range descs {
		if err := s.checkBlob(ctx, desc); err != nil {
			return nil, err
		}
	}
	return s.image(d, v1.Descriptor{Digest: d, Size: int64(len(raw))}, descs)
}

// image reads the stored image manifest of d and describes the image; self
// is the OCI manifest's own blob.
func (s *Store) image(d v1.Hash, self v1.Descriptor, descs []v1.Descriptor) (*Image, error) {
	b, err := s.readBlob(descs[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("read image manifest: %w", err)
	}
	m, err := checkConfig(b, d, descs)
	if err != nil {
		return nil, err
	}
	img := &Image{
		Digest:   d,
		Manifest: m,
		Boot:     s.BlobPath(descs[1].Digest),
		Root:     s.BlobPath(descs[2].Digest),
		Verity:   s.BlobPath(descs[3].Digest),
		blobs:    append([]v1.Descriptor{self}, descs...),
	}
	if len(descs) > 4 {
		img.BootSig = s.BlobPath(descs[4].Digest)
	}
	return img, nil
}

// bytesOrigin serves one blob already in memory.
type bytesOrigin struct {
	d v1.Hash
	b []byte
}

func (o bytesOrigin) String() string { return "memory" }
func (o bytesOrigin) verify(context.Context, v1.Hash, []signature.Verifier) error {
	return errors.New("not a signature source")
}
func (o bytesOrigin) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	return readAll(o.blob(ctx, d))
}
func (o bytesOrigin) blob(_ context.Context, d v1.Hash) (io.ReadCloser, error) {
	if d != o.d {
		return nil, os.ErrNotExist
	}
	return io.NopCloser(bytes.NewReader(o.b)), nil
}

// localOrigin serves the store's own blobs.
type localOrigin struct{ s *Store }

func (o localOrigin) String() string { return "the image store" }
func (o localOrigin) verify(context.Context, v1.Hash, []signature.Verifier) error {
	return errors.New("not a signature source")
}
func (o localOrigin) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	return readAll(o.blob(ctx, d))
}
func (o localOrigin) blob(_ context.Context, d v1.Hash) (io.ReadCloser, error) {
	return os.Open(o.s.BlobPath(d))
}
