package artifact

import (
	"context"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/image"
)

// Description is an image manifest and the digest of the OCI manifest
// that carries it: the digest `crane digest` prints, that signatures cover
// and that `REF@sha256:…` names.
type Description struct {
	// Digest is the OCI manifest's digest; for an output directory, the
	// digest Push gives it (pushes of one directory are byte-identical).
	Digest v1.Hash `json:"digest"`
	*image.Manifest
}

// Describe reads ref (an output directory, a registry reference or
// oci-layout:DIR[:tag]) like Inspect and adds its manifest digest.
func Describe(ctx context.Context, ref string, opts Options) (*Description, error) {
	if fi, err := os.Stat(ref); (err == nil && fi.IsDir()) || looksLikePath(ref) {
		img, m, err := FromDir(ref)
		if err != nil {
			return nil, err
		}
		d, err := img.Digest()
		if err != nil {
			return nil, err
		}
		return &Description{Digest: d, Manifest: m}, nil
	}
	img, err := open(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	_, m, err := readArtifact(img)
	if err != nil {
		return nil, err
	}
	return &Description{Digest: d, Manifest: m}, nil
}
