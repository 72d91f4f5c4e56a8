package artifact

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/racklet/racklet-boot/internal/ctxio"
	"github.com/racklet/racklet-boot/internal/ociref"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/racklet/racklet-boot/image"
)

// refNameAnnotation is the OCI annotation that carries a tag in an index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// Options tunes registry access (plain HTTP, credentials, transport).
type Options = ociref.Options

// layoutRef returns the directory and tag of a layout reference (tag
// default latest); ok is false for other references.
func layoutRef(ref string) (dir, tag string, ok bool, err error) {
	r, err := ociref.Parse(ref)
	if err != nil {
		return "", "", false, fmt.Errorf("parse reference %q: %w", ref, err)
	}
	switch r.Kind {
	case ociref.Layout:
		if r.Digest != "" {
			return "", "", false, fmt.Errorf("%q: want oci-layout:DIR[:tag], not a digest", ref)
		}
		return r.Path, r.TagOr(ociref.DefaultTag), true, nil
	case ociref.Archive:
		return "", "", false, fmt.Errorf("%q: a docker-archive holds no racklet image: use a registry or oci-layout:DIR[:tag]", ref)
	}
	return "", "", false, nil
}

// Push uploads the output directory dir to ref (a registry reference or oci-layout:DIR[:tag])
// and returns the digest of the artifact manifest.
func Push(ctx context.Context, dir, ref string, opts Options) (v1.Hash, error) {
	img, _, err := FromDir(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	ldir, tag, isLayout, err := layoutRef(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	if isLayout {
		p, err := layout.FromPath(ldir)
		if err != nil {
			if p, err = layout.Write(ldir, empty.Index); err != nil {
				return v1.Hash{}, fmt.Errorf("make OCI layout %s: %w", ldir, err)
			}
		}
		err = p.ReplaceImage(img, match.Annotation(refNameAnnotation, tag), layout.WithAnnotations(map[string]string{refNameAnnotation: tag}))
		if err != nil {
			return v1.Hash{}, fmt.Errorf("write OCI layout %s: %w", ldir, err)
		}
		return d, nil
	}
	r, err := opts.Reference(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Write(r, img, opts.Remote(ctx)...); err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", ref, err)
	}
	return d, nil
}

// open resolves ref to the artifact image.
func open(ctx context.Context, ref string, opts Options) (v1.Image, error) {
	ldir, tag, isLayout, err := layoutRef(ref)
	if err != nil {
		return nil, err
	}
	if isLayout {
		idx, err := layout.ImageIndexFromPath(ldir)
		if err != nil {
			return nil, fmt.Errorf("open OCI layout %s: %w", ldir, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("read OCI layout %s: %w", ldir, err)
		}
		for _, d := range im.Manifests {
			if d.Annotations[refNameAnnotation] == tag {
				return idx.Image(d.Digest)
			}
		}
		return nil, fmt.Errorf("OCI layout %s has no tag %q", ldir, tag)
	}
	r, err := opts.Reference(ref)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(r, opts.Remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", ref, err)
	}
	return img, nil
}

// Inspect returns the image manifest of ref: an output directory, a registry reference or
// oci-layout:DIR[:tag].
func Inspect(ctx context.Context, ref string, opts Options) (*image.Manifest, error) {
	if fi, err := os.Stat(ref); (err == nil && fi.IsDir()) || looksLikePath(ref) {
		return image.ReadManifest(ref)
	}
	img, err := open(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	_, m, err := readArtifact(img)
	return m, err
}

func readArtifact(img v1.Image) (*v1.Manifest, *image.Manifest, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("read OCI manifest: %w", err)
	}
	man, err := parseManifest(raw)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("read image manifest: %w", err)
	}
	if digestOf(cfg) != man.Config.Digest.String() {
		return nil, nil, fmt.Errorf("image manifest digest %s, OCI manifest says %s: %w", digestOf(cfg), man.Config.Digest, ErrNotArtifact)
	}
	m, err := image.ParseManifest(cfg)
	if err != nil {
		return nil, nil, err
	}
	return man, m, nil
}

// Pull downloads the artifact at ref into the output directory dir, checking every digest.
// It writes a sibling temporary directory and renames it at the end.
func Pull(ctx context.Context, ref, dir string, opts Options) (*image.Manifest, error) {
	img, err := open(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	man, m, err := readArtifact(img)
	if err != nil {
		return nil, err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", parent, err)
	}
	work, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("make %s: %w", dir, err)
	}
	defer os.RemoveAll(work)
	cfg, _ := img.RawConfigFile()
	if err := os.WriteFile(filepath.Join(work, image.ManifestFile), cfg, 0o644); err != nil {
		return nil, fmt.Errorf("write image manifest: %w", err)
	}
	for _, d := range man.Layers {
		if err := fetchBlob(ctx, img, d, filepath.Join(work, d.Annotations[titleAnnotation])); err != nil {
			return nil, err
		}
	}
	if err := m.Check(work); err != nil {
		return nil, fmt.Errorf("pulled files do not match the image manifest: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("replace %s: %w", dir, err)
	}
	if err := os.Rename(work, dir); err != nil {
		return nil, fmt.Errorf("move pull into %s: %w", dir, err)
	}
	return m, nil
}

func fetchBlob(ctx context.Context, img v1.Image, d v1.Descriptor, dst string) error {
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(dst), err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), ctxio.Reader(ctx, rc))
	if err != nil {
		return fmt.Errorf("fetch blob %s: %w", d.Digest, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.Digest.String() || n != d.Size {
		return fmt.Errorf("blob %s arrived as %d bytes %s: %w", d.Digest, n, got, errors.New("digest mismatch"))
	}
	return f.Close()
}

// looksLikePath reports whether ref is meant as a directory rather than a registry reference.
func looksLikePath(ref string) bool {
	return strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "./") || strings.HasPrefix(ref, "../") || ref == "." || ref == ".."
}
