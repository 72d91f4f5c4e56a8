package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
)

// CopyOptions says which image Copy takes from where to where.
type CopyOptions struct {
	// From is the source OCI layout.
	From string
	// Tag names the image in both layouts.
	Tag string
	// To is the destination OCI layout, created when missing; its other tags are kept and an
	// image already under Tag is replaced (its blobs stay, as with skopeo).
	To string
}

// Copy puts the image tagged o.Tag in o.From into o.To under the same tag and returns its
// manifest digest. Blobs are hard-linked where both layouts share a file system (the cache
// and the caller's directory usually do) and copied otherwise.
func Copy(ctx context.Context, o CopyOptions) (v1.Hash, error) {
	src, err := layout.FromPath(o.From)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("open OCI layout %s: %w", o.From, err)
	}
	desc, err := tagged(src, o.Tag)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := src.Image(desc.Digest)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("read image %s of %s: %w", o.Tag, o.From, err)
	}
	dst, err := openOrInit(o.To)
	if err != nil {
		return v1.Hash{}, err
	}
	blobs, err := imageBlobs(img)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("list blobs of %s in %s: %w", o.Tag, o.From, err)
	}
	for _, h := range blobs {
		if err := ctx.Err(); err != nil {
			return v1.Hash{}, err
		}
		if err := linkBlob(src, dst, h); err != nil {
			return v1.Hash{}, err
		}
	}
	opts := []layout.Option{layout.WithAnnotations(desc.Annotations)}
	if desc.Platform != nil {
		opts = append(opts, layout.WithPlatform(*desc.Platform))
	}
	if err := dst.ReplaceImage(img, match.Name(o.Tag), opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("write image %s to OCI layout %s: %w", o.Tag, o.To, err)
	}
	return desc.Digest, nil
}

// tagged finds the index entry of a tag.
func tagged(p layout.Path, tag string) (v1.Descriptor, error) {
	idx, err := p.ImageIndex()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read OCI layout index %s: %w", p, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("read OCI layout index %s: %w", p, err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[refNameAnnotation] == tag {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("OCI layout %s has no tag %q", p, tag)
}

// imageBlobs lists the manifest, config and layer digests of an image.
func imageBlobs(img v1.Image) ([]v1.Hash, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	hs := []v1.Hash{d, m.Config.Digest}
	for _, l := range m.Layers {
		hs = append(hs, l.Digest)
	}
	return hs, nil
}

// linkBlob hard-links one blob into dst unless it is there already.
func linkBlob(src, dst layout.Path, h v1.Hash) error {
	to := filepath.Join(string(dst), "blobs", h.Algorithm, h.Hex)
	if _, err := os.Stat(to); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return fmt.Errorf("create blob directory of %s: %w", dst, err)
	}
	// A link that cannot be made (another file system, no permission) is no failure: the
	// layout writer copies every blob that is missing.
	_ = os.Link(filepath.Join(string(src), "blobs", h.Algorithm, h.Hex), to)
	return nil
}
