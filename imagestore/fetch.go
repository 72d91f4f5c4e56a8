package imagestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/racklet/racklet-boot/internal/ctxio"
	"github.com/racklet/racklet-boot/internal/ociref"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/sign"
)

// maxManifestSize bounds an OCI manifest or an image manifest (config blob).
const maxManifestSize = 4 << 20

// origin is where one image's manifest, blobs and signatures come from: a
// registry repository or an OCI layout directory.
type origin interface {
	// verify checks the signatures of d.
	verify(ctx context.Context, d v1.Hash, vs []signature.Verifier) error
	// blob opens the blob d.
	blob(ctx context.Context, d v1.Hash) (io.ReadCloser, error)
	// manifest returns the raw manifest d (its digest is checked by the caller).
	manifest(ctx context.Context, d v1.Hash) ([]byte, error)
	String() string
}

// registryOrigin is one repository of a registry.
type registryOrigin struct {
	repo name.Repository
	reg  ociref.Options
}

func (o *registryOrigin) String() string { return o.repo.Name() }

func (o *registryOrigin) verify(ctx context.Context, d v1.Hash, vs []signature.Verifier) error {
	return sign.Verify(ctx, o.repo.Digest(d.String()), vs, o.reg.Remote(ctx)...)
}

func (o *registryOrigin) blob(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	ref := o.repo.Digest(d.String())
	l, err := remote.Layer(ref, o.reg.Remote(ctx)...)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

func (o *registryOrigin) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	desc, err := remote.Get(o.repo.Digest(d.String()), o.reg.Remote(ctx)...)
	if err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

// layoutOrigin is an OCI layout directory.
type layoutOrigin struct {
	dir string
}

func (o *layoutOrigin) String() string { return ociref.LayoutPrefix + o.dir }

func (o *layoutOrigin) verify(ctx context.Context, d v1.Hash, vs []signature.Verifier) error {
	_, err := sign.VerifyLayout(ctx, o.dir, d, vs)
	return err
}

func (o *layoutOrigin) blob(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return layout.Path(o.dir).Blob(d)
}

func (o *layoutOrigin) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	return readAll(o.blob(ctx, d))
}

// readAll reads a blob of at most maxManifestSize (+1, to tell it was larger).
func readAll(rc io.ReadCloser, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
}

// readManifest fetches the OCI manifest d, checks its digest and that it is a
// racklet artifact, and returns its raw bytes and the descriptors of the
// config and the boot, root and verity layers (the optional disk image is
// not needed to boot and is not fetched).
func readManifest(ctx context.Context, o origin, d v1.Hash) ([]byte, []v1.Descriptor, error) {
	raw, err := o.manifest(ctx, d)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch manifest %s from %s: %w", d, o, err)
	}
	if got := sha(raw); got != d.String() || len(raw) > maxManifestSize {
		return nil, nil, fmt.Errorf("%w: manifest %s from %s arrived as %s", ErrTampered, d, o, got)
	}
	var m v1.Manifest
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("%w: manifest %s: %v", ErrNotArtifact, d, err)
	}
	if m.Config.MediaType != artifact.ConfigMediaType {
		return nil, nil, fmt.Errorf("%w: manifest %s has config media type %q, want %q", ErrNotArtifact, d, m.Config.MediaType, artifact.ConfigMediaType)
	}
	want := map[string]string{
		image.BootFile:   artifact.BootMediaType,
		image.RootFile:   artifact.RootMediaType,
		image.VerityFile: artifact.VerityMediaType,
	}
	descs := []v1.Descriptor{m.Config}
	for _, file := range []string{image.BootFile, image.RootFile, image.VerityFile} {
		var found *v1.Descriptor
		for i, l := range m.Layers {
			if l.Annotations["org.opencontainers.image.title"] == file {
				if found != nil {
					return nil, nil, fmt.Errorf("%w: manifest %s has two %s layers", ErrNotArtifact, d, file)
				}
				found = &m.Layers[i]
			}
		}
		if found == nil || string(found.MediaType) != want[file] {
			return nil, nil, fmt.Errorf("%w: manifest %s has no %s layer of media type %s", ErrNotArtifact, d, file, want[file])
		}
		descs = append(descs, *found)
	}
	for _, desc := range descs {
		if desc.Digest.Algorithm != "sha256" || len(desc.Digest.Hex) != 64 || desc.Size < 0 {
			return nil, nil, fmt.Errorf("%w: manifest %s names blob %q of %d bytes", ErrNotArtifact, d, desc.Digest, desc.Size)
		}
	}
	return raw, descs, nil
}

// checkConfig parses the image manifest (config blob) and checks that it pins
// the same boot, root and verity blobs as the OCI manifest's layers.
func checkConfig(b []byte, d v1.Hash, descs []v1.Descriptor) (*image.Manifest, error) {
	m, err := image.ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%w: image %s: %v", ErrNotArtifact, d, err)
	}
	for i, bl := range []image.Blob{m.Boot.Blob, m.Root.Blob, m.Verity.Blob} {
		l := descs[i+1]
		if bl.Digest != l.Digest.String() || bl.Size != l.Size {
			return nil, fmt.Errorf("%w: image %s: its manifest pins %s as %d bytes %s, the layer is %d bytes %s",
				ErrTampered, d, bl.File, bl.Size, bl.Digest, l.Size, l.Digest)
		}
	}
	return m, nil
}

// writeBlob stores blob desc from o at path: it writes a temporary file
// beside it, checks size and sha256 while writing, then renames it. A blob
// already present is kept.
func writeBlob(ctx context.Context, o origin, desc v1.Descriptor, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() == desc.Size {
		return nil
	}
	rc, err := o.blob(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("fetch blob %s from %s: %w", desc.Digest, o, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+desc.Digest.Hex[:12]+"-")
	if err != nil {
		return fmt.Errorf("store blob %s: %w", desc.Digest, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), ctxio.Reader(ctx, io.LimitReader(rc, desc.Size+1)))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// go-containerregistry checks digests too, and reports a mismatch
		// as a read error at the end of the blob.
		if strings.Contains(err.Error(), "verifying") {
			return fmt.Errorf("%w: blob %s from %s: %v", ErrTampered, desc.Digest, o, err)
		}
		return fmt.Errorf("fetch blob %s from %s: %w", desc.Digest, o, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != desc.Digest.String() || n != desc.Size {
		return fmt.Errorf("%w: blob %s from %s arrived as %d bytes %s, want %d bytes", ErrTampered, desc.Digest, o, n, got, desc.Size)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("store blob %s: %w", desc.Digest, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store blob %s: %w", desc.Digest, err)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return fmt.Errorf("store blob %s: %w", desc.Digest, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store blob %s: %w", desc.Digest, err)
	}
	return nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}
