// Package artifact stores a built image as an OCI artifact: an OCI image manifest with its
// own artifactType whose config is the image's JSON manifest and whose layers are the output
// files, each named by an org.opencontainers.image.title annotation (the ORAS convention, so
// generic OCI tools can pull it too). It pushes to and pulls from registries and OCI layouts.
//
//	artifactType   application/vnd.racklet.image.v1
//	config         application/vnd.racklet.image.manifest.v1+json   manifest.json
//	layers         application/vnd.racklet.image.boot.v1.vfat       boot.vfat
//	               application/vnd.racklet.image.root.v1.squashfs   root.squashfs
//	               application/vnd.racklet.image.verity.v1          root.verity
//	               application/vnd.racklet.image.disk.v1.raw+zstd   disk.img.zst (optional)
//	               application/vnd.racklet.image.bootsig.v1         boot.sig (optional: the Pi's
//	                                                                signature of boot.vfat as boot.img)
package artifact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/racklet/racklet-boot/image"
)

// Media types of the artifact.
const (
	ArtifactType     = "application/vnd.racklet.image.v1"
	ConfigMediaType  = "application/vnd.racklet.image.manifest.v1+json"
	BootMediaType    = "application/vnd.racklet.image.boot.v1.vfat"
	RootMediaType    = "application/vnd.racklet.image.root.v1.squashfs"
	VerityMediaType  = "application/vnd.racklet.image.verity.v1"
	DiskMediaType    = "application/vnd.racklet.image.disk.v1.raw+zstd"
	BootSigMediaType = "application/vnd.racklet.image.bootsig.v1"
	BootBMediaType   = "application/vnd.racklet.image.boot-b.v1.vfat"
	titleAnnotation  = "org.opencontainers.image.title"
)

// ErrNotArtifact means the reference names something that is not a racklet image.
var ErrNotArtifact = errors.New("not a racklet image artifact")

// mediaTypes maps output file names to their layer media types.
var mediaTypes = map[string]types.MediaType{
	image.BootFile:    BootMediaType,
	image.RootFile:    RootMediaType,
	image.VerityFile:  VerityMediaType,
	image.DiskFile:    DiskMediaType,
	image.BootSigFile: BootSigMediaType,
	image.BootBFile:   BootBMediaType,
}

// FromDir makes the artifact of a build output directory, checking its files against the
// manifest first.
func FromDir(dir string) (v1.Image, *image.Manifest, error) {
	m, err := image.ReadManifest(dir)
	if err != nil {
		return nil, nil, err
	}
	if err := m.Check(dir); err != nil {
		return nil, nil, fmt.Errorf("output directory %s does not match its manifest: %w", dir, err)
	}
	config, err := os.ReadFile(filepath.Join(dir, image.ManifestFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read image manifest: %w", err)
	}
	a := &artifact{config: config, layers: map[v1.Hash]*fileLayer{}}
	cd, err := v1.NewHash(digestOf(config))
	if err != nil {
		return nil, nil, err
	}
	man := v1.Manifest{
		SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType,
		Config:      v1.Descriptor{MediaType: ConfigMediaType, Size: int64(len(config)), Digest: cd},
		Annotations: map[string]string{"org.opencontainers.image.created": m.Created.Format("2006-01-02T15:04:05Z")},
	}
	for _, b := range m.Blobs() {
		h, err := v1.NewHash(b.Digest)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest digest of %s: %w", b.File, err)
		}
		l := &fileLayer{path: filepath.Join(dir, b.File), digest: h, size: b.Size, mt: mediaTypes[b.File]}
		a.layers[h] = l
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: l.mt, Size: b.Size, Digest: h,
			Annotations: map[string]string{titleAnnotation: b.File}})
	}
	if a.raw, err = json.Marshal(man); err != nil {
		return nil, nil, fmt.Errorf("encode OCI manifest: %w", err)
	}
	img, err := partial.CompressedToImage(a)
	if err != nil {
		return nil, nil, err
	}
	return img, m, nil
}

var (
	_ partial.CompressedImageCore = (*artifact)(nil)
	_ partial.CompressedLayer     = (*fileLayer)(nil)
)

// artifact implements partial.CompressedImageCore over an output directory.
type artifact struct {
	raw, config []byte
	layers      map[v1.Hash]*fileLayer
}

func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) RawManifest() ([]byte, error)        { return a.raw, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := a.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}

// fileLayer is one output file served as a blob.
type fileLayer struct {
	path   string
	digest v1.Hash
	size   int64
	mt     types.MediaType
}

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }

// parseManifest checks that raw is a racklet artifact manifest and returns it.
func parseManifest(raw []byte) (*v1.Manifest, error) {
	var man v1.Manifest
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&man); err != nil {
		return nil, fmt.Errorf("parse OCI manifest: %w", err)
	}
	if man.Config.MediaType != ConfigMediaType {
		return nil, fmt.Errorf("config media type %q, want %q: %w", man.Config.MediaType, ConfigMediaType, ErrNotArtifact)
	}
	for _, l := range man.Layers {
		name := l.Annotations[titleAnnotation]
		if mt, ok := mediaTypes[name]; !ok || mt != l.MediaType {
			return nil, fmt.Errorf("layer %s titled %q with media type %q: %w", l.Digest, name, l.MediaType, ErrNotArtifact)
		}
	}
	return &man, nil
}

func digestOf(b []byte) string {
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	return h.String()
}
