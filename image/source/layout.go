package source

import (
	"errors"
	"fmt"
	"strings"

	"github.com/racklet/racklet-boot/internal/ociref"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// refNameAnnotation is the OCI annotation that carries a tag in an index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// openLayout opens DIR or DIR:tag of an OCI image layout. Without a tag the layout must hold
// exactly one top-level manifest or index; a digest picks that manifest.
func openLayout(r ociref.Ref, plat v1.Platform) (v1.Image, error) {
	dir, tag, spec := r.Path, r.Tag, r.String()
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("open OCI layout %s: %w", dir, errors.Join(ErrNotFound, err))
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout index %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read OCI layout index %s: %w", dir, err)
	}
	var picked []v1.Descriptor
	for _, d := range im.Manifests {
		if r.Digest != "" && d.Digest.String() != r.Digest {
			continue
		}
		if tag == "" || d.Annotations[refNameAnnotation] == tag {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0 && r.Digest != "":
		return nil, fmt.Errorf("OCI layout %s has no manifest %s: %w", dir, r.Digest, ErrNotFound)
	case len(picked) == 0 && tag != "":
		return nil, fmt.Errorf("OCI layout %s has no tag %q: %w", dir, tag, ErrNotFound)
	case len(picked) == 0:
		return nil, fmt.Errorf("OCI layout %s is empty: %w", dir, ErrNotFound)
	case len(picked) > 1:
		// Several untagged entries: let the platform decide among them.
		return pickFromIndex(idx, plat, spec)
	}
	d := picked[0]
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("read index %s in OCI layout %s: %w", d.Digest, dir, err)
		}
		return pickFromIndex(sub, plat, spec)
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("read image %s in OCI layout %s: %w", d.Digest, dir, err)
	}
	return img, nil
}

// pickFromIndex returns the image of idx that matches plat.
func pickFromIndex(idx v1.ImageIndex, plat v1.Platform, ref string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("read index of %s: %w", ref, err)
	}
	var seen []string
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		if d.Platform == nil {
			seen = append(seen, "unknown")
			continue
		}
		seen = append(seen, d.Platform.String())
		if platformMatches(*d.Platform, plat) {
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, fmt.Errorf("read %s image of %s: %w", plat.String(), ref, err)
			}
			return img, nil
		}
	}
	return nil, fmt.Errorf("%s offers [%s], not %s: %w", ref, strings.Join(seen, " "), plat.String(), ErrPlatform)
}
