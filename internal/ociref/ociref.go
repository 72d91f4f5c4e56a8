// Package ociref parses every image reference spelling racklet accepts, in
// one place, and builds go-containerregistry's registry options in one place.
//
// Spellings, as skopeo users write them:
//
//	host/repo:tag, host/repo@sha256:…     a registry reference (Docker Hub names expand)
//	docker://host/repo:tag                the same, with skopeo's transport prefix
//	oci-layout:DIR[:tag|@sha256:…]        an image in an OCI layout directory
//	oci:DIR[:tag|@sha256:…]               the same, with skopeo's transport name
//	docker-archive:FILE[:name:tag]        an image in a docker save tarball
//
// In the layout and archive forms the tag starts after the last ":" that no
// "/" follows, so "oci-layout:/srv/img:v1" is the directory /srv/img and the
// tag v1; a path that itself contains ":" is named with PreferExisting.
// Parse does not touch the filesystem or the network.
package ociref

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Kind says where a reference points.
type Kind int

// Reference kinds.
const (
	Registry Kind = iota // a registry reference
	Layout               // an OCI layout directory
	Archive              // a docker-archive tarball
)

// String names the kind as the canonical prefix does.
func (k Kind) String() string {
	switch k {
	case Layout:
		return "oci-layout"
	case Archive:
		return "docker-archive"
	}
	return "registry"
}

// Prefixes of the reference spellings.
const (
	LayoutPrefix  = "oci-layout:"
	OCIPrefix     = "oci:"
	ArchivePrefix = "docker-archive:"
	DockerPrefix  = "docker://"
)

// DefaultTag is the tag a layout reference without one means where a tag is
// needed (pushing, copying, resolving).
const DefaultTag = "latest"

// maxRefLen bounds what Parse reads.
const maxRefLen = 4096

// ErrInvalid is wrapped by every Parse error.
var ErrInvalid = errors.New("not an image reference")

// Ref is one parsed image reference.
type Ref struct {
	Kind Kind
	// Name is a registry reference without any transport prefix
	// ("host/repo:tag", "host/repo@sha256:…"); empty for other kinds.
	Name string
	// Path is the layout directory or the archive file; empty for registry references.
	Path string
	// Tag is the layout tag or the archive's image name ("" when none was written).
	Tag string
	// Digest is a layout manifest digest written as DIR@sha256:… ("" when none).
	Digest string
}

// Parse reads a reference in any of the package's spellings.
func Parse(s string) (Ref, error) {
	if s == "" {
		return Ref{}, fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(s) > maxRefLen {
		return Ref{}, fmt.Errorf("%w: %d bytes long", ErrInvalid, len(s))
	}
	for _, p := range []string{LayoutPrefix, OCIPrefix} {
		if spec, ok := strings.CutPrefix(s, p); ok {
			r := Ref{Kind: Layout}
			r.Path, r.Tag, r.Digest = splitLocal(spec)
			if r.Path == "" {
				return Ref{}, fmt.Errorf("%w: %q names no OCI layout directory", ErrInvalid, s)
			}
			if r.Tag == "" && r.Digest == "" && strings.HasSuffix(spec, ":") {
				return Ref{}, fmt.Errorf("%w: %q ends in an empty tag: write %sDIR[:tag]", ErrInvalid, s, LayoutPrefix)
			}
			return r, nil
		}
	}
	if spec, ok := strings.CutPrefix(s, ArchivePrefix); ok {
		r := Ref{Kind: Archive}
		r.Path, r.Tag = splitArchive(spec)
		if r.Path == "" {
			return Ref{}, fmt.Errorf("%w: %q names no archive file", ErrInvalid, s)
		}
		return r, nil
	}
	n := strings.TrimPrefix(s, DockerPrefix)
	if _, err := name.ParseReference(n, name.WeakValidation); err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %v", ErrInvalid, s, err)
	}
	return Ref{Kind: Registry, Name: n}, nil
}

// splitLocal splits DIR[:tag|@digest].
func splitLocal(spec string) (path, tag, digest string) {
	if i := strings.LastIndexByte(spec, '@'); i > 0 && isDigest(spec[i+1:]) {
		return spec[:i], "", spec[i+1:]
	}
	if i := strings.LastIndexByte(spec, ':'); i > 0 && !strings.Contains(spec[i:], "/") {
		return spec[:i], spec[i+1:], ""
	}
	return spec, "", ""
}

// splitArchive splits FILE[:name:tag] at the first ":" whose rest is an
// image name ("busybox:latest", "host:5000/repo:tag").
func splitArchive(spec string) (path, tag string) {
	if i := strings.IndexByte(spec, ':'); i > 0 {
		if _, err := name.ParseReference(spec[i+1:], name.WeakValidation); err == nil {
			return spec[:i], spec[i+1:]
		}
	}
	return spec, ""
}

// isDigest reports whether s looks like "sha256:<64 hex>" or "sha512:<128 hex>".
func isDigest(s string) bool {
	algo, hex, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	switch {
	case algo == "sha256" && len(hex) == 64, algo == "sha512" && len(hex) == 128:
	default:
		return false
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// TagOr returns the tag, or def when none was written.
func (r Ref) TagOr(def string) string {
	if r.Tag == "" {
		return def
	}
	return r.Tag
}

// String writes the reference in its canonical spelling: registry
// references without docker://, layouts as oci-layout:.
func (r Ref) String() string {
	switch r.Kind {
	case Layout:
		s := LayoutPrefix + r.Path
		switch {
		case r.Digest != "":
			s += "@" + r.Digest
		case r.Tag != "":
			s += ":" + r.Tag
		}
		return s
	case Archive:
		if r.Tag != "" {
			return ArchivePrefix + r.Path + ":" + r.Tag
		}
		return ArchivePrefix + r.Path
	}
	return r.Name
}

// Repository is what trust rules match a reference against: "oci-layout:DIR"
// for layouts, "docker-archive:FILE" for archives, else the registry
// repository in full ("registry.lan:5000/racklet/os"; Docker Hub names
// expand to "index.docker.io/library/…").
func (r Ref) Repository() string {
	switch r.Kind {
	case Layout:
		return LayoutPrefix + r.Path
	case Archive:
		return ArchivePrefix + r.Path
	}
	n, err := name.ParseReference(r.Name, name.WeakValidation)
	if err != nil {
		return r.Name
	}
	return n.Context().Name()
}

// Host is the registry host ("host:port") of a registry reference, "" for other kinds.
func (r Ref) Host() string {
	if r.Kind != Registry {
		return ""
	}
	n, err := name.ParseReference(r.Name, name.WeakValidation)
	if err != nil {
		return ""
	}
	return n.Context().RegistryStr()
}

// PreferExisting re-splits a layout or archive reference whose path may
// itself contain ":": when the whole spec names an existing file or
// directory it is the path (no tag); else the shortest existing prefix
// before a ":" is. exists is os.Stat's verdict; other references are
// returned unchanged.
func (r Ref) PreferExisting(exists func(path string) bool) Ref {
	if r.Kind == Registry || r.Digest != "" || r.Tag == "" {
		return r
	}
	spec := r.Path + ":" + r.Tag
	if exists(spec) {
		r.Path, r.Tag = spec, ""
		return r
	}
	for i := 1; i < len(spec); i++ {
		if spec[i] == ':' && exists(spec[:i]) {
			r.Path, r.Tag = spec[:i], spec[i+1:]
			return r
		}
	}
	return r
}
