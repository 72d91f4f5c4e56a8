package sign

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/racklet/racklet-boot/internal/ociref"
)

// Target is an image resolved to its manifest digest: in a registry (Ref)
// or in an OCI layout directory (Layout). Signatures are made and checked
// on targets, never on tags, so a tag moved in between cannot be signed.
type Target struct {
	Ref    name.Digest // registry images
	Layout string      // layout images: the directory
	Digest v1.Hash
}

// String names the target as oci-layout:DIR@sha256:… or host/repo@sha256:….
func (t Target) String() string {
	if t.Layout != "" {
		return ociref.LayoutPrefix + t.Layout + "@" + t.Digest.String()
	}
	return t.Ref.String()
}

// ResolveTarget turns ref (host/repo:tag, host/repo@sha256:…,
// oci-layout:DIR[:tag|@sha256:…], or any other spelling ociref parses) into
// a target, asking the registry for a tag's digest.
func ResolveTarget(ctx context.Context, ref string, reg ociref.Options) (Target, error) {
	r, err := ociref.Parse(ref)
	if err != nil {
		return Target{}, err
	}
	switch r.Kind {
	case ociref.Archive:
		return Target{}, fmt.Errorf("%s: a signature needs a registry or an OCI layout to live in", ref)
	case ociref.Layout:
		want := r.Digest
		if want == "" {
			want = r.TagOr(ociref.DefaultTag)
		}
		d, err := ResolveLayout(r.Path, want)
		if err != nil {
			return Target{}, err
		}
		return Target{Layout: r.Path, Digest: d}, nil
	}
	n, err := reg.Reference(ref)
	if err != nil {
		return Target{}, err
	}
	dr, ok := n.(name.Digest)
	if !ok {
		desc, err := remote.Head(n, reg.Remote(ctx)...)
		if err != nil {
			return Target{}, fmt.Errorf("resolve %s: %w", ref, err)
		}
		dr = n.Context().Digest(desc.Digest.String())
	}
	d, err := v1.NewHash(dr.DigestStr())
	if err != nil {
		return Target{}, fmt.Errorf("digest of %s: %w", ref, err)
	}
	return Target{Ref: dr, Digest: d}, nil
}

// SignTarget signs t with signer, the way Sign and SignLayout do; identity
// is the docker-reference a layout signature claims.
func SignTarget(ctx context.Context, t Target, signer signature.Signer, identity string, reg ociref.Options) error {
	if t.Layout != "" {
		return SignLayout(ctx, t.Layout, t.Digest, identity, signer)
	}
	return Sign(ctx, t.Ref, signer, reg.Remote(ctx)...)
}

// CheckTarget returns the signatures of t that verify under any of verifiers, as Check does.
func CheckTarget(ctx context.Context, t Target, verifiers []signature.Verifier, reg ociref.Options) ([]Verified, error) {
	if t.Layout != "" {
		return VerifyLayout(ctx, t.Layout, t.Digest, verifiers)
	}
	return Check(ctx, t.Ref, verifiers, reg.Remote(ctx)...)
}
