// Package source opens the OCI base image of a build: a registry reference, an OCI layout
// directory (oci-layout:DIR[:tag]) or an image tarball (docker-archive:FILE), resolving
// multi-platform indexes to one platform, and reads its layers with their digests checked.
package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Prefixes of the non-registry reference forms, as skopeo users write them.
const (
	LayoutPrefix  = "oci-layout:"
	ArchivePrefix = "docker-archive:"
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

// Options tunes Open. The zero value asks for linux/arm64 with the Docker keychain over HTTPS.
type Options struct {
	// Platform selects the variant of a multi-platform index; default linux/arm64.
	Platform *v1.Platform
	// Insecure allows plain HTTP (and unverified TLS) to the registry.
	Insecure bool
	// Keychain resolves registry credentials; default authn.DefaultKeychain (Docker credential helpers).
	Keychain authn.Keychain
	// Transport is the HTTP transport for registries; default remote.DefaultTransport.
	Transport http.RoundTripper
}

func (o Options) platform() v1.Platform {
	if o.Platform != nil {
		return *o.Platform
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

// Open resolves ref to one image of the requested platform.
func Open(ctx context.Context, ref string, opts Options) (*Image, error) {
	var (
		img v1.Image
		err error
	)
	switch {
	case strings.HasPrefix(ref, LayoutPrefix):
		img, err = openLayout(strings.TrimPrefix(ref, LayoutPrefix), opts.platform())
	case strings.HasPrefix(ref, ArchivePrefix):
		img, err = openArchive(strings.TrimPrefix(ref, ArchivePrefix))
	default:
		img, err = openRemote(ctx, ref, opts)
	}
	if err != nil {
		return nil, err
	}
	if err := checkPlatform(img, opts.platform()); err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("digest of base image %s: %w", ref, err)
	}
	return &Image{Image: img, Ref: ref, ManifestDigest: d}, nil
}

func openRemote(ctx context.Context, ref string, opts Options) (v1.Image, error) {
	var nopts []name.Option
	if opts.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("parse base reference %q: %w", ref, err)
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(opts.platform())}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	desc, err := remote.Get(r, ropts...)
	if err != nil {
		return nil, fmt.Errorf("fetch base image %s: %w", ref, errors.Join(ErrNotFound, err))
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, fmt.Errorf("read index of %s: %w", ref, err)
		}
		return pickFromIndex(idx, opts.platform(), ref)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("read base image %s: %w", ref, err)
	}
	return img, nil
}

// openArchive reads a docker save / docker-archive tarball; FILE[:tag] picks a tag when the
// archive holds several images.
func openArchive(spec string) (v1.Image, error) {
	path, tagStr := splitExisting(spec)
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

// splitExisting splits PATH[:suffix] at the first colon whose left side exists, so paths and
// tags may both hold colons; without such a colon the whole spec is the path.
func splitExisting(spec string) (string, string) {
	if _, err := os.Stat(spec); err == nil {
		return spec, ""
	}
	for i := 0; i < len(spec); i++ {
		if spec[i] != ':' || i == 0 {
			continue
		}
		if _, err := os.Stat(spec[:i]); err == nil {
			return spec[:i], spec[i+1:]
		}
	}
	if i := strings.LastIndex(spec, ":"); i > 0 && !strings.Contains(spec[i:], "/") {
		return spec[:i], spec[i+1:]
	}
	return spec, ""
}
