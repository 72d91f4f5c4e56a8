package ociref

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Options is how registries are reached: the one place racklet builds
// go-containerregistry's name and remote options. The zero value speaks
// HTTPS to every registry with the Docker keychain and no platform choice.
type Options struct {
	// Insecure allows plain HTTP (and unverified TLS) to every registry, as
	// the commands' --insecure does.
	Insecure bool
	// InsecureHosts lists registry hosts ("host:port") reached over plain
	// HTTP, as a rack config's images.insecure does.
	InsecureHosts []string
	// Keychain resolves registry credentials; default authn.DefaultKeychain
	// (Docker credential helpers and config).
	Keychain authn.Keychain
	// Transport for registry requests; default remote.DefaultTransport.
	Transport http.RoundTripper
	// Platform picks the variant of a multi-platform index; nil leaves the
	// choice to the caller (go-containerregistry's default is linux/amd64).
	Platform *v1.Platform
}

// IsInsecure reports whether host is reached over plain HTTP.
func (o Options) IsInsecure(host string) bool {
	if o.Insecure {
		return true
	}
	for _, h := range o.InsecureHosts {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// Reference parses a registry reference (with or without docker://) for
// go-containerregistry, marked insecure when its host is.
func (o Options) Reference(ref string) (name.Reference, error) {
	r, err := Parse(ref)
	if err != nil {
		return nil, err
	}
	if r.Kind != Registry {
		return nil, fmt.Errorf("%w: %s is an %s reference, not a registry one", ErrInvalid, ref, r.Kind)
	}
	var nopts []name.Option
	if o.IsInsecure(r.Host()) {
		nopts = append(nopts, name.Insecure)
	}
	n, err := name.ParseReference(r.Name, nopts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalid, ref, err)
	}
	return n, nil
}

// Tag parses a registry reference that must name a tag (a destination).
func (o Options) Tag(ref string) (name.Tag, error) {
	n, err := o.Reference(ref)
	if err != nil {
		return name.Tag{}, err
	}
	t, ok := n.(name.Tag)
	if !ok {
		return name.Tag{}, fmt.Errorf("%w: %q names a digest; write host/repo:tag", ErrInvalid, ref)
	}
	return t, nil
}

// Remote returns the remote options for one call under ctx: credentials,
// transport and platform.
func (o Options) Remote(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ro := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if o.Transport != nil {
		ro = append(ro, remote.WithTransport(o.Transport))
	}
	if o.Platform != nil {
		ro = append(ro, remote.WithPlatform(*o.Platform))
	}
	return ro
}
