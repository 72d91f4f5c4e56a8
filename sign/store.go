package sign

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// RefNameAnnotation names an image inside an OCI layout's index.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// errNoImage is returned by a store that has no image under a tag.
var errNoImage = errors.New("no such image")

// store keeps signature images by tag: a registry repository or an OCI layout directory.
type store interface {
	// get returns the image tagged tag, or an error wrapping errNoImage.
	get(ctx context.Context, tag string) (v1.Image, error)
	// put tags img as tag, replacing what the tag named before.
	put(ctx context.Context, tag string, img v1.Image) error
	// where names the store for messages.
	where() string
}

// registryStore is a repository in a registry.
type registryStore struct {
	repo name.Repository
	opts []remote.Option
}

func newRegistryStore(repo name.Repository, opts []remote.Option) *registryStore {
	return &registryStore{repo: repo, opts: append([]remote.Option{}, opts...)}
}

func (s *registryStore) where() string { return s.repo.Name() }

func (s *registryStore) get(ctx context.Context, tag string) (v1.Image, error) {
	img, err := remote.Image(s.repo.Tag(tag), append(s.opts, remote.WithContext(ctx))...)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%s:%s: %w", s.repo.Name(), tag, errNoImage)
		}
		return nil, fmt.Errorf("fetch %s:%s: %w", s.repo.Name(), tag, err)
	}
	return img, nil
}

func (s *registryStore) put(ctx context.Context, tag string, img v1.Image) error {
	if err := remote.Write(s.repo.Tag(tag), img, append(s.opts, remote.WithContext(ctx))...); err != nil {
		return fmt.Errorf("push %s:%s: %w", s.repo.Name(), tag, err)
	}
	return nil
}

// layoutStore is an OCI layout directory; images are named by RefNameAnnotation.
type layoutStore struct {
	dir string
}

func (s *layoutStore) where() string { return "oci-layout:" + s.dir }

// lookup returns the index entry named tag.
func (s *layoutStore) lookup(tag string) (layout.Path, *v1.Descriptor, error) {
	p, err := layout.FromPath(s.dir)
	if err != nil {
		return "", nil, fmt.Errorf("open OCI layout %s: %w", s.dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return "", nil, fmt.Errorf("open OCI layout %s: %w", s.dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return "", nil, fmt.Errorf("read OCI layout %s: %w", s.dir, err)
	}
	for i := range im.Manifests {
		if im.Manifests[i].Annotations[RefNameAnnotation] == tag {
			return p, &im.Manifests[i], nil
		}
	}
	return p, nil, nil
}

func (s *layoutStore) get(ctx context.Context, tag string) (v1.Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, d, err := s.lookup(tag)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("oci-layout:%s:%s: %w", s.dir, tag, errNoImage)
	}
	img, err := p.Image(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("read oci-layout:%s:%s: %w", s.dir, tag, err)
	}
	return img, nil
}

func (s *layoutStore) put(ctx context.Context, tag string, img v1.Image) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := layout.FromPath(s.dir)
	if err != nil {
		return fmt.Errorf("open OCI layout %s: %w", s.dir, err)
	}
	err = p.ReplaceImage(img, match.Annotation(RefNameAnnotation, tag),
		layout.WithAnnotations(map[string]string{RefNameAnnotation: tag}))
	if err != nil {
		return fmt.Errorf("write oci-layout:%s:%s: %w", s.dir, tag, err)
	}
	return nil
}

// ResolveLayout returns the digest of the image named tag in the OCI layout dir, or checks
// that a digest ("sha256:…") is in its index.
func ResolveLayout(dir, tagOrDigest string) (v1.Hash, error) {
	if _, err := os.Stat(dir); err != nil {
		return v1.Hash{}, fmt.Errorf("open OCI layout: %w", err)
	}
	s := &layoutStore{dir: dir}
	if d, err := v1.NewHash(tagOrDigest); err == nil {
		if err := s.has(d); err != nil {
			return v1.Hash{}, err
		}
		return d, nil
	}
	_, desc, err := s.lookup(tagOrDigest)
	if err != nil {
		return v1.Hash{}, err
	}
	if desc == nil {
		return v1.Hash{}, fmt.Errorf("OCI layout %s has no image named %q", dir, tagOrDigest)
	}
	return desc.Digest, nil
}

// has checks that the layout's index lists d.
func (s *layoutStore) has(d v1.Hash) error {
	idx, err := layout.ImageIndexFromPath(s.dir)
	if err != nil {
		return fmt.Errorf("open OCI layout %s: %w", s.dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return fmt.Errorf("read OCI layout %s: %w", s.dir, err)
	}
	for _, m := range im.Manifests {
		if m.Digest == d {
			return nil
		}
	}
	return fmt.Errorf("OCI layout %s has no image %s", s.dir, d)
}
