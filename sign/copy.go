package sign

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/racklet/racklet-boot/internal/ociref"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// CopyResult says what Copy moved.
type CopyResult struct {
	Digest     v1.Hash // the image's manifest digest (unchanged by the copy)
	Signatures int     // signatures carried along (0: the source had none)
}

// Copy copies an image and its signature image (the sha256-<digest>.sig tag
// cosign and Sign use) from src to dst. Each is a registry reference
// (host/repo:tag) or oci-layout:DIR[:tag] (default tag latest); a missing
// destination layout is created. The digest does not change, so signatures
// still verify at the destination: this is how a signed image moves into an
// air-gapped rack and back. An unsigned source is copied and reported with
// zero signatures; callers that need one verify first.
//
// reg says how registries are reached (--insecure is reg.Insecure).
func Copy(ctx context.Context, src, dst string, reg ociref.Options) (CopyResult, error) {
	from, fromTag, err := location(ctx, src, reg, false)
	if err != nil {
		return CopyResult{}, err
	}
	to, toTag, err := location(ctx, dst, reg, true)
	if err != nil {
		return CopyResult{}, err
	}
	img, err := from.get(ctx, fromTag)
	if err != nil {
		return CopyResult{}, fmt.Errorf("read %s: %w", src, err)
	}
	d, err := img.Digest()
	if err != nil {
		return CopyResult{}, fmt.Errorf("digest of %s: %w", src, err)
	}
	if err := to.put(ctx, toTag, img); err != nil {
		return CopyResult{}, err
	}
	res := CopyResult{Digest: d}
	sig, err := from.get(ctx, SignatureTag(d))
	switch {
	case errors.Is(err, errNoImage):
		return res, nil
	case err != nil:
		return res, fmt.Errorf("read the signatures of %s: %w", src, err)
	}
	if err := to.put(ctx, SignatureTag(d), sig); err != nil {
		return res, fmt.Errorf("copy the signatures: %w", err)
	}
	if ls, err := sig.Layers(); err == nil {
		res.Signatures = len(ls)
	}
	return res, nil
}

// location parses a Copy reference into a store and a tag. create makes a
// missing OCI layout directory.
func location(ctx context.Context, ref string, reg ociref.Options, create bool) (store, string, error) {
	r, err := ociref.Parse(ref)
	if err != nil {
		return nil, "", fmt.Errorf("%q: want host/repo:tag or oci-layout:DIR[:tag]: %w", ref, err)
	}
	switch r.Kind {
	case ociref.Archive:
		return nil, "", fmt.Errorf("%q: want host/repo:tag or oci-layout:DIR[:tag], not a docker-archive", ref)
	case ociref.Layout:
		if r.Digest != "" {
			return nil, "", fmt.Errorf("%q: want oci-layout:DIR[:tag], not a digest", ref)
		}
		dir := r.Path
		if _, err := layout.FromPath(dir); err != nil {
			if !create {
				return nil, "", fmt.Errorf("open OCI layout %s: %w", dir, err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, "", fmt.Errorf("make OCI layout %s: %w", dir, err)
			}
			if _, err := layout.Write(dir, empty.Index); err != nil {
				return nil, "", fmt.Errorf("make OCI layout %s: %w", dir, err)
			}
		}
		return &layoutStore{dir: dir}, r.TagOr(ociref.DefaultTag), nil
	}
	tag, err := reg.Tag(ref)
	if err != nil {
		return nil, "", fmt.Errorf("%q: want host/repo:tag or oci-layout:DIR[:tag]: %w", ref, err)
	}
	return newRegistryStore(tag.Context(), reg.Remote(ctx)), tag.TagStr(), nil
}
