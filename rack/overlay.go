package rack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// OverlayKind is the kind of the approved-nodes overlay: the nodes an
// operator approved with `racklet-boot nodes approve`, kept in the data
// directory (OverlayFile) beside the declarative config and merged into it
// on every load. The file is YAML in the config's own node format:
//
//	apiVersion: racklet.io/v1alpha1
//	kind: ApprovedNodes
//	nodes:
//	  - name: pi-17
//	    kind: rpi4
//	    serial: 5b154517
//	    hatKey: ed25519:...
//
// An approved node without a boot: boots the config's default: source.
// A node of the overlay that the config also names (by name, serial, MAC
// or HAT key) is dropped with a warning: the config wins, so moving an
// approved node into rack.yaml is an edit of rack.yaml alone.
const OverlayKind = "ApprovedNodes"

// OverlayFile is the overlay's name in the data directory.
const OverlayFile = "approved-nodes.yaml"

// Overlay is the approved-nodes file as written.
type Overlay struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Nodes      []Node `yaml:"nodes"`
}

// LoadOverlay applies the overlay at path to cfg (see ApplyOverlay); a
// missing file leaves cfg as it is.
func LoadOverlay(cfg *Config, path string) (*Config, []FieldError, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read approved nodes: %w", err)
	}
	return ApplyOverlay(cfg, data, path)
}

// ApplyOverlay returns a copy of cfg with the overlay's nodes appended,
// each validated as a config node is (errors carry the overlay's file name
// and lines), plus warnings for the overlay nodes the config shadows. cfg
// is not changed.
func ApplyOverlay(cfg *Config, data []byte, filename string) (*Config, []FieldError, error) {
	if strings.TrimSpace(string(data)) == "" {
		return cfg, nil, nil
	}
	nodes, d, err := decodeOverlay(data, filename, len(cfg.Nodes))
	if err != nil {
		return nil, nil, err
	}
	errs := d.errs
	base := len(cfg.Nodes)

	m := *cfg
	m.Nodes = append([]Node(nil), cfg.Nodes...)
	var warnings []FieldError
	for i, n := range nodes {
		path := fmt.Sprintf("nodes[%d]", base+i)
		if by := shadowedBy(cfg, &n); by != "" {
			warnings = append(warnings, FieldError{File: filename, Line: n.Line, Col: d.where[path].Column, Path: path,
				Msg: fmt.Sprintf("ignored: the rack config names this machine already (%s); remove it from this file", by)})
			continue
		}
		if n.Power == "" {
			n.Power = PowerOn
		}
		if isZeroBoot(n.Boot) && cfg.Default != nil {
			n.Boot = *cfg.Default
			n.Boot.Initrd = append([]string(nil), cfg.Default.Initrd...)
		}
		m.Nodes = append(m.Nodes, n)
	}
	v := &validator{d: d, c: &m, base: filepath.Dir(filename)}
	if abs, err := filepath.Abs(v.base); err == nil {
		v.base = abs
	}
	v.nodes()
	if err := errs.err(); err != nil {
		return nil, warnings, err
	}
	return &m, warnings, nil
}

// ReadOverlay decodes an overlay's nodes as written (no defaults, no
// validation), for a tool that adds to it.
func ReadOverlay(data []byte, filename string) (Overlay, error) {
	o := Overlay{APIVersion: APIVersion, Kind: OverlayKind}
	if strings.TrimSpace(string(data)) == "" {
		return o, nil
	}
	nodes, _, err := decodeOverlay(data, filename, 0)
	o.Nodes = nodes
	return o, err
}

// decodeOverlay decodes the overlay document, numbering its nodes from base.
func decodeOverlay(data []byte, filename string, base int) ([]Node, *decoder, error) {
	errs := &collector{file: filename}
	root := parseDocument(data, errs)
	if root == nil {
		return nil, nil, errs.err()
	}
	d := &decoder{errs: errs, where: map[string]*yaml.Node{"": root}}
	var apiVersion, kind string
	var nodes []Node
	d.mapping(root, "", fields{
		"apiVersion": d.str(&apiVersion),
		"kind":       d.str(&kind),
		"nodes": func(n *yaml.Node, path string) {
			if isNull(n) {
				return
			}
			if n.Kind != yaml.SequenceNode {
				d.errs.at(n, path, "must be a list, not %s", kindName(n))
				return
			}
			for i, c := range n.Content {
				ip := fmt.Sprintf("nodes[%d]", base+i)
				c = resolve(c)
				d.where[ip] = c
				node := Node{Line: c.Line, Source: filename}
				d.node1(&node)(c, ip)
				nodes = append(nodes, node)
			}
		},
	})
	if apiVersion != APIVersion {
		d.errs.at(d.node("apiVersion"), "apiVersion", "%q is not supported: write \"apiVersion: %s\"", apiVersion, APIVersion)
	}
	if kind != OverlayKind {
		d.errs.at(d.node("kind"), "kind", "%q: an approved-nodes file has kind %s", kind, OverlayKind)
	}
	return nodes, d, errs.err()
}

// shadowedBy names the config node that is the same machine as n, if any.
func shadowedBy(cfg *Config, n *Node) string {
	for i := range cfg.Nodes {
		c := &cfg.Nodes[i]
		switch {
		case c.Name == n.Name:
			return "node " + c.Name
		case n.Serial != "" && strings.EqualFold(c.Serial, n.Serial):
			return fmt.Sprintf("serial %s, node %s", n.Serial, c.Name)
		case n.MAC != nil && c.MAC.String() == n.MAC.String():
			return fmt.Sprintf("mac %s, node %s", n.MAC, c.Name)
		case n.HATKey != "" && c.HATKey == n.HATKey:
			return "its HAT key, node " + c.Name
		}
	}
	return ""
}

func isZeroBoot(b Boot) bool { return b.Dir == "" && b.FAT == "" && b.Image == "" }

// WriteOverlay renders an overlay file (for racklet-boot nodes approve).
func WriteOverlay(o Overlay) ([]byte, error) {
	o.APIVersion, o.Kind = APIVersion, OverlayKind
	out := struct {
		APIVersion string        `yaml:"apiVersion"`
		Kind       string        `yaml:"kind"`
		Nodes      []overlayNode `yaml:"nodes"`
	}{APIVersion: o.APIVersion, Kind: o.Kind}
	for _, n := range o.Nodes {
		on := overlayNode{Name: n.Name, Kind: string(n.Kind), Serial: n.Serial, HATKey: n.HATKey}
		if n.MAC != nil {
			on.MAC = n.MAC.String()
		}
		if n.Power == PowerOff {
			on.Power = string(n.Power)
		}
		if !isZeroBoot(n.Boot) {
			b := n.Boot
			on.Boot = &b
		}
		out.Nodes = append(out.Nodes, on)
	}
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	header := "# Nodes approved with `racklet-boot nodes approve`, merged into the rack config.\n" +
		"# Move a node into rack.yaml to make it part of the declarative config; this entry is then ignored.\n"
	return append([]byte(header), b...), nil
}

type overlayNode struct {
	Name   string `yaml:"name"`
	Kind   string `yaml:"kind"`
	Serial string `yaml:"serial,omitempty"`
	MAC    string `yaml:"mac,omitempty"`
	HATKey string `yaml:"hatKey,omitempty"`
	Power  string `yaml:"power,omitempty"`
	Boot   *Boot  `yaml:"boot,omitempty"`
}
