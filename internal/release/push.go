package release

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/racklet/racklet-boot/internal/ociref"
	"github.com/racklet/racklet-boot/sign"
)

// Push copies the release's signed image (the index and every platform's
// image) and its signature image to ref, a registry reference host/repo:tag;
// the digest does not change, so the signature verifies there.
func Push(ctx context.Context, res *Result, dir, ref string, reg ociref.Options) error {
	tag, err := reg.Tag(ref)
	if err != nil {
		return err
	}
	p, err := layout.FromPath(filepath.Join(dir, res.Layout))
	if err != nil {
		return fmt.Errorf("open the release's OCI layout: %w", err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	img, err := idx.ImageIndex(res.Digest)
	if err != nil {
		return fmt.Errorf("the release's image %s: %w", res.Digest, err)
	}
	if err := remote.WriteIndex(tag, img, reg.Remote(ctx)...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	sigDigest, err := sign.ResolveLayout(filepath.Join(dir, res.Layout), sign.SignatureTag(res.Digest))
	if err != nil {
		return fmt.Errorf("the release's signature: %w", err)
	}
	sig, err := idx.Image(sigDigest)
	if err != nil {
		return err
	}
	if err := remote.Write(tag.Context().Tag(sign.SignatureTag(res.Digest)), sig, reg.Remote(ctx)...); err != nil {
		return fmt.Errorf("push the signature of %s: %w", ref, err)
	}
	return nil
}
