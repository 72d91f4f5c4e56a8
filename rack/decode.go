package rack

import (
	"fmt"
	"sort"
	"strings"

	"github.com/agnivade/levenshtein"
	"gopkg.in/yaml.v3"
)

// decoder walks a yaml.Node tree into a Config by hand, so that every value
// keeps its position and every unknown field is reported with its line.
type decoder struct {
	errs  *collector
	where map[string]*yaml.Node // field path -> the node that set it
}

// fields maps the keys a mapping may hold to the function decoding each value.
type fields map[string]func(n *yaml.Node, path string)

// resolve follows aliases (bounded, so a malicious alias chain cannot loop).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// kindName names a node kind the way an operator reads it.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

// join appends a key to a field path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// isNull reports whether n is an empty value ("key:" or "key: null").
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// mapping decodes a mapping node, calling the handler of each known key and
// reporting unknown and repeated keys.
func (d *decoder) mapping(n *yaml.Node, path string, f fields) {
	n = resolve(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errs.at(n, path, "must be a mapping of fields, not %s", kindName(n))
		return
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errs.at(k, path, "field names must be plain words, not %s", kindName(k))
			continue
		}
		kp := join(path, k.Value)
		if k.Value == "<<" {
			d.errs.at(k, kp, "YAML merge keys are not supported: write the fields out")
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			d.errs.at(k, kp, "defined twice (first at line %d)", prev.Line)
			continue
		}
		seen[k.Value] = k
		h, ok := f[k.Value]
		if !ok {
			if near := nearest(k.Value, f); near != "" {
				d.errs.at(k, kp, "unknown field: did you mean %q? (known here: %s)", near, knownKeys(f))
			} else {
				d.errs.at(k, kp, "unknown field (known here: %s)", knownKeys(f))
			}
			continue
		}
		v = resolve(v)
		if v.Kind == yaml.MappingNode || v.Kind == yaml.SequenceNode {
			d.where[kp] = k // "required" errors inside point at "server:", not its first field
		} else {
			d.where[kp] = v // a bad value is pointed at itself
		}
		h(v, kp)
	}
}

// knownKeys lists the keys of f, sorted, for "unknown field" messages.
func knownKeys(f fields) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// nearest returns the known key an unknown one is most likely a typo of:
// the same word in another case, or the closest by edit distance when at
// most a third of it (at least 1, at most 3 edits) differs. "" if none is.
func nearest(key string, f fields) string {
	best, bestDist := "", 0
	for k := range f {
		if strings.EqualFold(k, key) {
			return k
		}
		dist := levenshtein.ComputeDistance(strings.ToLower(k), strings.ToLower(key))
		if dist > max(1, min(3, len(k)/3)) {
			continue
		}
		if best == "" || dist < bestDist || (dist == bestDist && k < best) {
			best, bestDist = k, dist
		}
	}
	return best
}

// sequence decodes each item of a list with item.
func (d *decoder) sequence(n *yaml.Node, path string, item func(n *yaml.Node, path string)) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errs.at(n, path, "must be a list, not %s", kindName(n))
		return
	}
	for i, c := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		c = resolve(c)
		d.where[ip] = c
		item(c, ip)
	}
}

// node returns the node that set path, or the nearest enclosing one that
// exists, so that errors about missing fields point at their parent.
func (d *decoder) node(path string) *yaml.Node {
	for {
		if n, ok := d.where[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return d.where[""]
		}
		path = path[:i]
	}
}

// decodeConfig fills c from the document's root mapping.
func (d *decoder) decodeConfig(root *yaml.Node, c *Config) {
	d.where[""] = root
	d.mapping(root, "", fields{
		"apiVersion":      d.str(&c.APIVersion),
		"kind":            d.str(&c.Kind),
		"server":          d.server(&c.Server),
		"dhcp":            d.dhcp(&c.DHCP),
		"boot":            d.bootSettings(&c.Boot),
		"unknownMachines": d.strAs((*string)(&c.UnknownMachines)),
		"enrolment":       d.strAs((*string)(&c.Enrolment)),
		"default": func(n *yaml.Node, path string) {
			c.Default = &Boot{}
			d.boot(c.Default)(n, path)
		},
		"trust":      d.trust(&c.Trust),
		"images":     d.images(&c.Images),
		"groups":     d.groups(&c.Groups),
		"kubernetes": d.kubernetes(&c.Kubernetes),
		"nodes": func(n *yaml.Node, path string) {
			d.sequence(n, path, func(n *yaml.Node, path string) {
				node := Node{Line: n.Line}
				d.node1(&node)(n, path)
				c.Nodes = append(c.Nodes, node)
			})
		},
	})
}

func (d *decoder) server(s *Server) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.mapping(n, path, fields{
			"interface":            d.str(&s.Interface),
			"address":              d.addr(&s.Address),
			"dataDir":              d.str(&s.DataDir),
			"httpPort":             d.port(&s.HTTPPort),
			"tftpPort":             d.port(&s.TFTPPort),
			"bmcPort":              d.port(&s.BMCPort),
			"routerAdvertisements": d.optBool(&s.RouterAdvertisements),
		})
	}
}

func (d *decoder) dhcp(h *DHCP) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.mapping(n, path, fields{
			"mode": d.strAs((*string)(&h.Mode)),
			"pool": func(n *yaml.Node, path string) {
				h.Pool = &Pool{}
				d.mapping(n, path, fields{
					"start": d.addr(&h.Pool.Start),
					"end":   d.addr(&h.Pool.End),
				})
			},
			"subnet":    d.prefix(&h.Subnet),
			"router":    d.addr(&h.Router),
			"dns":       d.addrList(&h.DNS),
			"domain":    d.str(&h.Domain),
			"leaseTime": d.duration(&h.LeaseTime),
			"piMenu":    d.str(&h.PiMenu),
		})
	}
}

func (d *decoder) bootSettings(b *BootSettings) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.mapping(n, path, fields{
			"allowEEPROMUpdate": d.boolean(&b.AllowEEPROMUpdate),
		})
	}
}

func (d *decoder) boot(b *Boot) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.mapping(n, path, fields{
			"dir":      d.str(&b.Dir),
			"fat":      d.str(&b.FAT),
			"image":    d.str(&b.Image),
			"kernel":   d.str(&b.Kernel),
			"initrd":   d.strList(&b.Initrd),
			"cmdline":  d.str(&b.Cmdline),
			"efi":      d.str(&b.EFI),
			"rootHash": d.str(&b.RootHash),
		})
	}
}

func (d *decoder) node1(nd *Node) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.mapping(n, path, fields{
			"name":              d.str(&nd.Name),
			"kind":              d.strAs((*string)(&nd.Kind)),
			"serial":            d.str(&nd.Serial),
			"mac":               d.mac(&nd.MAC),
			"address":           d.addr(&nd.Address),
			"boot":              d.boot(&nd.Boot),
			"allowEEPROMUpdate": d.optBool(&nd.AllowEEPROMUpdate),
			"hatKey":            d.str(&nd.HATKey),
			"labels":            d.strMap(&nd.Labels),
			"power":             d.strAs((*string)(&nd.Power)),
		})
	}
}
