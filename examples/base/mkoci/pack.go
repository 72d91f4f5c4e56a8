package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/racklet/racklet-boot/internal/ctxio"
)

// refNameAnnotation carries a tag in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// defaultPath is the PATH of the image config, Debian's for root.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// PackOptions says what Pack reads and writes.
type PackOptions struct {
	// Tar is the uncompressed root file system tarball; it becomes the only layer, byte for byte.
	Tar string
	// Platform goes into the image config (os, architecture, variant) and the index entry.
	Platform v1.Platform
	// Layout is the OCI layout directory, created when missing; other tags in it are kept.
	Layout string
	// Tag names the image in the layout's index; an image already under that tag is replaced.
	Tag string
	// Epoch is the creation time (seconds since 1970) of the config and its history entry.
	Epoch int64
	// Annotations are set on the image manifest.
	Annotations map[string]string
}

// Pack writes the tarball as a one-layer OCI image into the layout under the tag and returns the
// manifest digest. The layer is compressed in one pass (gzip, BestSpeed) while it is written, so
// the tarball is read once.
func Pack(ctx context.Context, o PackOptions) (v1.Hash, error) {
	f, err := os.Open(o.Tar)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("open root tarball: %w", err)
	}
	defer f.Close()
	created := v1.Time{Time: time.Unix(o.Epoch, 0).UTC()}
	cfg := &v1.ConfigFile{
		OS:           o.Platform.OS,
		Architecture: o.Platform.Architecture,
		Variant:      o.Platform.Variant,
		Created:      created,
		Config:       v1.Config{Env: []string{defaultPath}, Cmd: []string{"/sbin/init"}},
		RootFS:       v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image config: %w", err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	layer := stream.NewLayer(io.NopCloser(ctxio.Reader(ctx, f)),
		stream.WithMediaType(types.OCILayer), stream.WithCompressionLevel(gzip.BestSpeed))
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: "examples/base/debian.sh (mmdebstrap)"},
	})
	if err != nil {
		return v1.Hash{}, fmt.Errorf("add root layer: %w", err)
	}
	if len(o.Annotations) > 0 {
		img = mutate.Annotations(img, o.Annotations).(v1.Image)
	}
	p, err := openOrInit(o.Layout)
	if err != nil {
		return v1.Hash{}, err
	}
	err = p.ReplaceImage(img, match.Name(o.Tag),
		layout.WithAnnotations(map[string]string{refNameAnnotation: o.Tag}), layout.WithPlatform(o.Platform))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write image %s to OCI layout %s: %w", o.Tag, o.Layout, err)
	}
	return img.Digest()
}

// openOrInit opens an OCI layout, or creates an empty one where none is.
func openOrInit(dir string) (layout.Path, error) {
	if _, err := os.Stat(dir + "/index.json"); err == nil {
		p, err := layout.FromPath(dir)
		if err != nil {
			return "", fmt.Errorf("open OCI layout %s: %w", dir, err)
		}
		return p, nil
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", fmt.Errorf("create OCI layout %s: %w", dir, err)
	}
	return p, nil
}
