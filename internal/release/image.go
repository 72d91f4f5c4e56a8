package release

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/racklet/racklet-boot/sign"
)

// In the image.
const (
	imageBinary = "usr/local/bin/racklet-boot"
	imageConfig = "/etc/racklet/rack.yaml"
	imageState  = "/var/lib/racklet"
)

// writeImage builds racklet-boot's image for every platform built, as one
// OCI index in the layout Dir/oci tagged with the version, and signs the
// index there (the signature image sits beside it, as cosign stores it).
func writeImage(ctx context.Context, o Options, bins []Binary) (v1.Hash, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range bins {
		if b.Command != "racklet-boot" {
			continue
		}
		img, plat, err := platformImage(o, b)
		if err != nil {
			return v1.Hash{}, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: plat}})
	}
	dir := filepath.Join(o.Dir, LayoutDir)
	if err := os.RemoveAll(dir); err != nil {
		return v1.Hash{}, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write OCI layout: %w", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{sign.RefNameAnnotation: o.Version})); err != nil {
		return v1.Hash{}, fmt.Errorf("write OCI layout: %w", err)
	}
	d, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if err := sign.SignLayout(ctx, dir, d, o.Identity, o.Signer); err != nil {
		return v1.Hash{}, fmt.Errorf("sign the image: %w", err)
	}
	return d, nil
}

// platformImage is racklet-boot for one platform: one layer holding the
// binary and the config and state directories, run as `racklet-boot serve`.
func platformImage(o Options, b Binary) (v1.Image, *v1.Platform, error) {
	goos, goarch, _ := strings.Cut(b.Platform, "/")
	plat := &v1.Platform{OS: goos, Architecture: goarch}
	if goarch == "arm64" {
		plat.Variant = "v8"
	}
	bin, err := os.ReadFile(filepath.Join(o.Dir, b.File))
	if err != nil {
		return nil, nil, err
	}
	tarBytes, err := imageTar(bin, o)
	if err != nil {
		return nil, nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, nil, err
	}
	created := v1.Time{Time: o.Created}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{Created: created, CreatedBy: "racklet release " + o.Version}})
	if err != nil {
		return nil, nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.Created = plat.OS, plat.Architecture, plat.Variant, created
	cf.Config.Entrypoint = []string{"/" + imageBinary}
	cf.Config.Cmd = []string{"serve", "--config", imageConfig, "--data-dir", imageState}
	cf.Config.Volumes = map[string]struct{}{imageState: {}}
	cf.Config.ExposedPorts = map[string]struct{}{"67/udp": {}, "69/udp": {}, "80/tcp": {}, "4011/udp": {}}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":   "racklet-boot",
		"org.opencontainers.image.version": o.Version,
		"org.opencontainers.image.created": o.Created.UTC().Format("2006-01-02T15:04:05Z"),
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, nil, err
	}
	return img, plat, nil
}

// imageTar is the layer's tar: directories, then the binary, all dated
// at the release time, owned by root.
func imageTar(bin []byte, o Options) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"etc/", "etc/racklet/", "usr/", "usr/local/", "usr/local/bin/", "var/", "var/lib/", "var/lib/racklet/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: o.Created, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: imageBinary, Mode: 0o755, Size: int64(len(bin)), ModTime: o.Created, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
