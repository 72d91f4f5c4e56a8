// Package source opens the OCI base image of a build: a registry reference, an OCI layout
// directory (oci-layout:DIR[:tag]) or an image tarball (docker-archive:FILE), resolving
// multi-platform indexes to one platform, and reads its layers with their digests checked.
package source

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/racklet/racklet-boot/internal/ociref"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Prefixes of the non-registry reference forms, as skopeo users write them
// (ociref parses every spelling).
const (
	LayoutPrefix  = ociref.LayoutPrefix
	ArchivePrefix = ociref.ArchivePrefix
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound means the reference, tag or digest names no image.
	ErrNotFound = errors.New("base image not found")
	// ErrPlatform means the image (or no entry of its index) matches the requested platform.
	ErrPlatform = errors.New("base image has no variant for the requested platform")
	// ErrCorrupt means a layer's content does not match its recorded digest.
	ErrCorrupt = errors.New("base image layer is corrupt")
)

// Options tunes Open: how registries are reached, and the platform to pick
// from a multi-platform index (default linux/arm64). The zero value asks for
// linux/arm64 with the Docker keychain over HTTPS.
type Options = ociref.Options

// platform is the platform Open picks: opts.Platform, else linux/arm64.
func platform(opts Options) v1.Platform {
	if opts.Platform != nil {
		return *opts.Platform
	}
	return v1.Platform{OS: "linux", Architecture: "arm64"}
}

// Image is an opened base image.
type Image struct {
	v1.Image
	// Ref is the reference the image was opened from.
	Ref string
	// ManifestDigest is the digest of the image manifest (one platform, not the index).
	ManifestDigest v1.Hash
}

// Open resolves ref (any spelling ociref parses) to one image of the
// requested platform. A layout or archive path may itself contain ":": the
// longest spelling that exists on disk is the path.
func Open(ctx context.Context, ref string, opts Options) (*Image, error) {
	r, err := ociref.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("parse base reference %q: %w", ref, err)
	}
	r = r.PreferExisting(func(p string) bool { _, err := os.Stat(p); return err == nil })
	var img v1.Image
	switch r.Kind {
	case ociref.Layout:
		img, err = openLayout(r, platform(opts))
	case ociref.Archive:
		img, err = openArchive(r.Path, r.Tag)
	default:
		img, err = openRemote(ctx, ref, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := checkPlatform(img, platform(opts)); err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest of base image %s: %w", ref, err)
	}
	return &Image{Image: img, Ref: ref, ManifestDigest: d}, nil
}

func openRemote(ctx context.Context, ref string, opts Options) (v1.Image, error) {
	r, err := opts.Reference(ref)
	if err != nil {
		return nil, fmt.Errorf("parse base reference %q: %w", ref, err)
	}
	plat := platform(opts)
	opts.Platform = &plat
	desc, err := remote.Get(r, opts.Remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("fetch base image %s: %w", ref, errors.Join(ErrNotFound, err))
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("read index of %s: %w", ref, err)
		}
		return pickFromIndex(idx, plat, ref)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("read base image %s: %w", ref, err)
	}
	return img, nil
}

// openArchive reads a docker save / docker-archive tarball; tagStr (the
// image name after FILE:) picks an image when the archive holds several.
func openArchive(path, tagStr string) (v1.Image, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open image archive %s: %w", path, errors.Join(ErrNotFound, err))
	}
	var tag *name.Tag
	if tagStr != "" {
		t, err := name.NewTag(tagStr)
		if err != nil {
			return nil, fmt.Errorf("parse tag %q of archive %s: %w", tagStr, path, err)
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(path, tag)
	if err != nil {
		return nil, fmt.Errorf("read image archive %s: %w", path, err)
	}
	return img, nil
}

func checkPlatform(img v1.Image, want v1.Platform) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("read base image config: %w", err)
	}
	if cf.OS == "" && cf.Architecture == "" {
		return nil
	}
	got := v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
	if !platformMatches(got, want) {
		return fmt.Errorf("base image is %s, want %s: %w", got.String(), want.String(), ErrPlatform)
	}
	return nil
}

// platformMatches compares OS and architecture, and the variant when both sides name one.
func platformMatches(got, want v1.Platform) bool {
	if got.OS != want.OS || got.Architecture != want.Architecture {
		return false
	}
	return got.Variant == "" || want.Variant == "" || got.Variant == want.Variant ||
		(got.Architecture == "arm64" && (got.Variant == "v8" || want.Variant == "v8"))
}
