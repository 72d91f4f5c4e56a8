package sign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// LayoutPrefix starts a reference to an image in an OCI layout directory:
// oci-layout:DIR[:tag].
const LayoutPrefix = "oci-layout:"

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
// insecure allows plain-HTTP registries, as --insecure does.
func Copy(ctx context.Context, src, dst string, insecure bool, opts ...remote.Option) (CopyResult, error) {
	from, fromTag, err := location(src, insecure, opts, false)
	if err != nil {
		return CopyResult{}, err
	}
	to, toTag, err := location(dst, insecure, opts, true)
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
func location(ref string, insecure bool, opts []remote.Option, create bool) (store, string, error) {
	if rest, ok := strings.CutPrefix(ref, LayoutPrefix); ok {
		dir, tag := rest, "latest"
		if i := strings.LastIndexByte(rest, ':'); i > 0 && !strings.Contains(rest[i+1:], "/") {
			dir, tag = rest[:i], rest[i+1:]
		}
		if dir == "" || tag == "" {
			return nil, "", fmt.Errorf("%q: want oci-layout:DIR[:tag]", ref)
		}
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
		return &layoutStore{dir: dir}, tag, nil
	}
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	tag, err := name.NewTag(ref, nopts...)
	if err != nil {
		return nil, "", fmt.Errorf("%q: want host/repo:tag or oci-layout:DIR[:tag]: %w", ref, err)
	}
	return newRegistryStore(tag.Context(), opts), tag.TagStr(), nil
}
