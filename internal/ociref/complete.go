package ociref

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// refNameAnnotation carries a tag in an OCI layout's index.json.
const refNameAnnotation = "org.opencontainers.image.ref.name"

// maxCompletions bounds what Complete returns.
const maxCompletions = 200

// Complete returns the references that extend prefix, for shell
// completion: the transport prefixes; directories after oci-layout: (or
// oci:) and the tags of a layout after "oci-layout:DIR:"; a registry
// repository's tags after "host/repo:". Listing tags asks the registry
// (bounded by ctx); any failure just completes nothing. done is false when
// a completion is a prefix the user goes on typing (no space after it).
func Complete(ctx context.Context, prefix string, o Options) (completions []string, done bool) {
	for _, p := range []string{LayoutPrefix, OCIPrefix} {
		if rest, ok := strings.CutPrefix(prefix, p); ok {
			return completeLayout(p, rest)
		}
	}
	rest, docker := strings.CutPrefix(prefix, DockerPrefix)
	if i := strings.LastIndex(rest, ":"); i > 0 && strings.Contains(rest[:i], "/") && !strings.Contains(rest[i:], "/") {
		tags := registryTags(ctx, rest[:i], o)
		var out []string
		for _, t := range tags {
			ref := rest[:i] + ":" + t
			if docker {
				ref = DockerPrefix + ref
			}
			if strings.HasPrefix(ref, prefix) {
				out = append(out, ref)
			}
		}
		return limit(out), true
	}
	if prefix == "" || strings.HasPrefix(LayoutPrefix, prefix) || strings.HasPrefix(DockerPrefix, prefix) {
		var out []string
		for _, p := range []string{LayoutPrefix, DockerPrefix} {
			if strings.HasPrefix(p, prefix) {
				out = append(out, p)
			}
		}
		return out, false
	}
	return nil, false
}

// completeLayout completes "DIR" (directories) or "DIR:tag" (the layout's tags).
func completeLayout(transport, rest string) ([]string, bool) {
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
		dir, tag := rest[:i], rest[i+1:]
		var out []string
		for _, t := range layoutTags(dir) {
			if strings.HasPrefix(t, tag) {
				out = append(out, transport+dir+":"+t)
			}
		}
		return limit(out), true
	}
	dir, base := filepath.Split(rest)
	list := dir
	if list == "" {
		list = "."
	}
	ents, err := os.ReadDir(list)
	if err != nil {
		return nil, false
	}
	var out []string
	if _, err := layout.ImageIndexFromPath(rest); err == nil && rest != "" {
		out = append(out, transport+rest+":") // a layout: its tags come next
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), base) && (base != "" || !strings.HasPrefix(e.Name(), ".")) {
			out = append(out, transport+dir+e.Name()+"/")
		}
	}
	return limit(out), false
}

// layoutTags lists the tags of the OCI layout in dir.
func layoutTags(dir string) []string {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil
	}
	var tags []string
	for _, d := range im.Manifests {
		if t := d.Annotations[refNameAnnotation]; t != "" && !strings.HasSuffix(t, ".sig") {
			tags = append(tags, t)
		}
	}
	sort.Strings(tags)
	return tags
}

// registryTags lists a repository's tags, leaving out signature tags.
func registryTags(ctx context.Context, repo string, o Options) []string {
	var nopts []name.Option
	if r, err := Parse(repo + ":x"); err == nil && o.IsInsecure(r.Host()) {
		nopts = append(nopts, name.Insecure)
	}
	rp, err := name.NewRepository(repo, nopts...)
	if err != nil {
		return nil
	}
	tags, err := remote.List(rp, o.Remote(ctx)...)
	if err != nil {
		return nil
	}
	out := tags[:0]
	for _, t := range tags {
		if !strings.HasSuffix(t, ".sig") {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

func limit(s []string) []string {
	if len(s) > maxCompletions {
		return s[:maxCompletions]
	}
	return s
}
