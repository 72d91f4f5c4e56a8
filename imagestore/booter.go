package imagestore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/sign"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/racklet/racklet-boot/internal/ociref"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/rack"
)

// DefaultFresh is how long Booter reuses a verified image for a reference
// before resolving its tag again.
const DefaultFresh = 5 * time.Second

// Dir is where a rack's image store lives: <server.dataDir>/images.
func Dir(cfg *rack.Config) string { return filepath.Join(cfg.Server.DataDir, "images") }

// OptionsFor returns the store options a rack config asks for
// (images.insecure, images.layout).
func OptionsFor(cfg *rack.Config) Options {
	return Options{Registry: ociref.Options{InsecureHosts: cfg.Images.Insecure}, Layout: cfg.Images.Layout}
}

// Booter verifies and fetches the images a rack config assigns, under the
// rack's trust rules: the first trust rule whose pattern matches the
// reference's repository names the keys; a reference no rule covers, an
// unsigned or untrusted image and a tampered one are refused (IsRefusal).
// The server hands its images to the resolver (resolve.Images).
type Booter struct {
	Store *Store
	// Config returns the current rack config (its trust rules); it is
	// called on every Boot, so a reloaded config applies at once.
	Config func() *rack.Config
	// Fresh is how long a verified image (or a refusal) is reused for the
	// same reference and keys before the tag is resolved again; 0 means
	// DefaultFresh, negative resolves on every call.
	Fresh time.Duration

	mu        sync.Mutex
	seen      *rack.Config // the config recent and verifiers were filled under
	recent    map[recentKey]recent
	verifiers map[*rack.TrustRule][]signature.Verifier
}

type recentKey struct {
	rule *rack.TrustRule
	ref  string
}

type recent struct {
	img *Image
	err error // a refusal, remembered too so a tampered image is not re-fetched per file
	at  time.Time
}

// Boot verifies and fetches ref (or reuses it, see Fresh). Errors for
// images that must not be booted satisfy IsRefusal.
func (b *Booter) Boot(ctx context.Context, ref string) (*Image, error) {
	cfg := b.Config()
	if cfg == nil {
		return nil, errors.New("no rack config")
	}
	rule, repo, pattern, ok := cfg.TrustFor(ref)
	if !ok {
		return nil, &NoTrustRuleError{Ref: ref, Repository: repo}
	}
	img, err := b.ensure(ctx, cfg, rule, ref)
	if err != nil {
		var te *TrustError
		if errors.As(err, &te) {
			cp := *te // shared by concurrent callers: never modified
			cp.Pattern = pattern
			err = &cp
		}
		return nil, err
	}
	return img, nil
}

// ensure calls Store.Ensure unless a fresh enough result for the same rule
// (the same parsed keys) is at hand.
func (b *Booter) ensure(ctx context.Context, cfg *rack.Config, rule *rack.TrustRule, ref string) (*Image, error) {
	fresh := b.Fresh
	if fresh == 0 {
		fresh = DefaultFresh
	}
	now := time.Now()
	if fresh > 0 {
		b.mu.Lock()
		r, ok := b.recent[recentKey{rule, ref}]
		b.mu.Unlock()
		if ok && now.Sub(r.at) < fresh {
			return r.img, r.err
		}
	}
	vs, err := b.ruleVerifiers(cfg, rule)
	if err != nil {
		return nil, &TrustError{Ref: ref, Err: err} // no key to verify with: refused
	}
	img, err := b.Store.Ensure(ctx, ref, vs)
	if (err != nil && !IsRefusal(err)) || fresh < 0 {
		return img, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgetOld(cfg)
	b.recent[recentKey{rule, ref}] = recent{img: img, err: err, at: now}
	return img, err
}

// forgetOld drops what was learned under another config: a new config has
// new rules. The caller holds b.mu.
func (b *Booter) forgetOld(cfg *rack.Config) {
	if b.recent == nil || b.seen != cfg {
		b.recent, b.verifiers, b.seen = map[recentKey]recent{}, map[*rack.TrustRule][]signature.Verifier{}, cfg
	}
}

// ruleVerifiers parses a trust rule's keys (read by the config's
// validation) into verifiers, once per rule of a config.
func (b *Booter) ruleVerifiers(cfg *rack.Config, rule *rack.TrustRule) ([]signature.Verifier, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.forgetOld(cfg)
	if vs, ok := b.verifiers[rule]; ok {
		return vs, nil
	}
	vs := make([]signature.Verifier, 0, len(rule.Keys))
	for i, k := range rule.Keys {
		v, err := sign.ParsePublicKey(k.Data)
		if err != nil {
			return nil, fmt.Errorf("key %d of the trust rule on line %d: %w", i+1, rule.Line, err)
		}
		vs = append(vs, v)
	}
	b.verifiers[rule] = vs
	return vs, nil
}

// Prefetch verifies and fetches every boot.image of the current config
// (nodes and default), so that the first boot does not wait for a large
// download inside a TFTP transfer. It returns the digests of the images it
// made ready (what GC should keep) and every failure, joined.
func (b *Booter) Prefetch(ctx context.Context) ([]v1.Hash, error) {
	cfg := b.Config()
	if cfg == nil {
		return nil, errors.New("no rack config")
	}
	refs := map[string]bool{}
	for _, n := range cfg.Nodes {
		if n.Boot.Image != "" {
			refs[n.Boot.Image] = true
		}
	}
	if cfg.Default != nil && cfg.Default.Image != "" {
		refs[cfg.Default.Image] = true
	}
	var (
		keep []v1.Hash
		errs []error
	)
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		img, err := b.Boot(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keep = append(keep, img.Digest)
	}
	return keep, errors.Join(errs...)
}
