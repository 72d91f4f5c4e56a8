package rack

import (
	"fmt"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"
)

// LayoutPrefix starts an image reference that names an OCI layout directory:
// "oci-layout:DIR[:tag]" (the tag defaults to "latest").
const LayoutPrefix = "oci-layout:"

// SplitLayout splits "oci-layout:DIR[:tag]" into the directory and the tag
// ("latest" when none is given). ok is false when ref is not a layout reference.
func SplitLayout(ref string) (dir, tag string, ok bool) {
	spec, ok := strings.CutPrefix(ref, LayoutPrefix)
	if !ok {
		return "", "", false
	}
	if i := strings.LastIndex(spec, ":"); i > 0 && !strings.Contains(spec[i:], "/") {
		return spec[:i], spec[i+1:], true
	}
	return spec, "latest", true
}

// ImageRepository returns the repository a trust rule is matched against:
// "oci-layout:DIR" for layout references, else the registry repository in
// full ("registry.lan:5000/racklet/os"; Docker Hub names are expanded to
// "index.docker.io/library/…").
func ImageRepository(ref string) (string, error) {
	if dir, _, ok := SplitLayout(ref); ok {
		if dir == "" {
			return "", fmt.Errorf("%q names no OCI layout directory", ref)
		}
		return LayoutPrefix + dir, nil
	}
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", fmt.Errorf("%q is not an image reference: %w", ref, err)
	}
	return r.Context().Name(), nil
}

// TrustFor returns the first trust rule whose pattern matches the repository
// of ref, with the repository; ok is false when no rule matches.
func (c *Config) TrustFor(ref string) (rule *TrustRule, repo, pattern string, ok bool) {
	repo, err := ImageRepository(ref)
	if err != nil {
		return nil, "", "", false
	}
	for i := range c.Trust {
		for _, p := range c.Trust[i].Repositories {
			if m, _ := path.Match(p, repo); m {
				return &c.Trust[i], repo, p, true
			}
		}
	}
	return nil, repo, "", false
}

// IsInsecure reports whether host is listed in images.insecure (plain HTTP).
func (c *Config) IsInsecure(host string) bool {
	for _, h := range c.Images.Insecure {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

func (d *decoder) trust(p *[]TrustRule) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.sequence(n, path, func(n *yaml.Node, path string) {
			r := TrustRule{Line: n.Line}
			d.mapping(n, path, fields{
				"repositories": d.strList(&r.Repositories),
				"keys": func(n *yaml.Node, path string) {
					d.sequence(n, path, func(n *yaml.Node, path string) {
						var k TrustKey
						d.mapping(n, path, fields{
							"file": d.str(&k.File),
							"pem":  d.str(&k.PEM),
						})
						r.Keys = append(r.Keys, k)
					})
				},
			})
			*p = append(*p, r)
		})
	}
}

func (d *decoder) images(im *Images) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.mapping(n, path, fields{
			"insecure": d.strList(&im.Insecure),
			"layout":   d.str(&im.Layout),
		})
	}
}
