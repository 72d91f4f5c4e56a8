package imagestore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/sync/singleflight"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/internal/ociref"
	"github.com/racklet/racklet-boot/sign"
)

// Options tunes where images come from. The zero value fetches from
// registries over HTTPS with the default keychain.
type Options struct {
	// Registry says how registries are reached: plain-HTTP hosts
	// (InsecureHosts, a rack's images.insecure), credentials, transport.
	Registry ociref.Options
	// Layout, when set, is an OCI layout directory every registry reference
	// is looked up in (by the full reference, then by its tag) instead of
	// asking the registry: an air-gapped rack. Layout references
	// (oci-layout:DIR[:tag]) always read their own layout.
	Layout string
	// Log receives one record per image fetched or refused; nil discards.
	Log *slog.Logger
}

// Image is one verified image in the store.
type Image struct {
	Ref      string          // the reference asked for
	Digest   v1.Hash         // the OCI manifest digest the signature covers
	Manifest *image.Manifest // the image manifest (verity root hash, command line)
	Boot     string          // path of boot.vfat in the store
	Root     string          // path of root.squashfs
	Verity   string          // path of root.verity
}

// Store is a content-addressed image directory. It is safe for concurrent use.
type Store struct {
	dir  string
	opts Options
	log  *slog.Logger

	gcMu     sync.RWMutex // Ensure holds it shared; GC exclusively
	flight   singleflight.Group
	mu       sync.Mutex
	verified map[string]bool // digest + key set -> signature verified
}

// Open returns the store in dir, creating dir/blobs/sha256 when missing.
func Open(dir string, opts Options) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{dir: dir, opts: opts, log: log, verified: map[string]bool{}}, nil
}

// BlobPath is where the blob d is (or would be) stored.
func (s *Store) BlobPath(d v1.Hash) string {
	return filepath.Join(s.dir, "blobs", d.Algorithm, d.Hex)
}

// Resolve returns the manifest digest ref names now, and where its
// manifest, blobs and signatures come from.
func (s *Store) Resolve(ctx context.Context, ref string) (v1.Hash, error) {
	d, _, err := s.resolve(ctx, ref)
	return d, err
}

func (s *Store) resolve(ctx context.Context, ref string) (v1.Hash, origin, error) {
	pr, err := ociref.Parse(ref)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	switch pr.Kind {
	case ociref.Layout:
		want := pr.Digest
		if want == "" {
			want = pr.TagOr(ociref.DefaultTag)
		}
		d, err := sign.ResolveLayout(pr.Path, want)
		if err != nil {
			return v1.Hash{}, nil, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return d, &layoutOrigin{dir: pr.Path}, nil
	case ociref.Archive:
		return v1.Hash{}, nil, fmt.Errorf("resolve %s: a docker-archive is not an image source", ref)
	}
	r, err := s.opts.Registry.Reference(ref)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	if s.opts.Layout != "" {
		return s.resolveInLayout(ref, r)
	}
	o := &registryOrigin{repo: r.Context(), reg: s.opts.Registry}
	if dr, ok := r.(name.Digest); ok {
		d, err := v1.NewHash(dr.DigestStr())
		if err != nil {
			return v1.Hash{}, nil, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return d, o, nil
	}
	desc, err := remote.Head(r, s.opts.Registry.Remote(ctx)...)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return desc.Digest, o, nil
}

// resolveInLayout looks a registry reference up in Options.Layout.
func (s *Store) resolveInLayout(ref string, r name.Reference) (v1.Hash, origin, error) {
	o := &layoutOrigin{dir: s.opts.Layout}
	if dr, ok := r.(name.Digest); ok {
		d, err := sign.ResolveLayout(s.opts.Layout, dr.DigestStr())
		if err != nil {
			return v1.Hash{}, nil, fmt.Errorf("resolve %s in OCI layout: %w", ref, err)
		}
		return d, o, nil
	}
	d, err := sign.ResolveLayout(s.opts.Layout, ref)
	if err != nil {
		d, err = sign.ResolveLayout(s.opts.Layout, r.Identifier())
	}
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("resolve %s in OCI layout: %w", ref, err)
	}
	return d, o, nil
}

// keySetID names a set of keys, so that a verification is remembered only
// for the keys it was made with.
func keySetID(vs []signature.Verifier) (string, error) {
	var ids []string
	for _, v := range vs {
		pub, err := v.PublicKey()
		if err != nil {
			return "", fmt.Errorf("public key: %w", err)
		}
		pem, err := cryptoutils.MarshalPublicKeyToPEM(pub)
		if err != nil {
			return "", fmt.Errorf("public key: %w", err)
		}
		h := sha256.Sum256(pem)
		ids = append(ids, hex.EncodeToString(h[:]))
	}
	sort.Strings(ids)
	return strings.Join(ids, ","), nil
}

// readBlob reads a stored blob (at most maxManifestSize bytes).
func (s *Store) readBlob(d v1.Hash) ([]byte, error) {
	f, err := os.Open(s.BlobPath(d))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifestSize+1))
}
