package rack

import (
	"path"
	"strings"

	"github.com/racklet/racklet-boot/internal/ociref"
	"gopkg.in/yaml.v3"
)

// ImageRepository returns the repository a trust rule is matched against
// (ociref.Ref.Repository): "oci-layout:DIR" for layout references, else the
// registry repository in full ("registry.lan:5000/racklet/os"; Docker Hub
// names are expanded to "index.docker.io/library/…").
func ImageRepository(ref string) (string, error) {
	r, err := ociref.Parse(ref)
	if err != nil {
		return "", err
	}
	return r.Repository(), nil
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
