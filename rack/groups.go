package rack

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Group is a set of nodes that run one image and take a new one in a staged
// rollout. Members are named (Nodes) or selected by labels (Selector).
type Group struct {
	Name string `yaml:"name"`
	// Nodes names the members; Selector selects every node carrying all
	// of its labels. A group has exactly one of them.
	Nodes    []string          `yaml:"nodes,omitempty"`
	Selector map[string]string `yaml:"selector,omitempty"`
	// Image is the signed image the group runs (an OCI reference). Editing
	// it starts a rollout; editing it back undoes one.
	Image   string        `yaml:"image"`
	Rollout RolloutPolicy `yaml:"rollout"`
	// Members are the names of the nodes in the group, in config order,
	// resolved at validation.
	Members []string `yaml:"-"`
	// Line is where the group starts in the config file (for messages).
	Line int `yaml:"-"`
}

// RolloutPolicy says how a group takes a new image.
type RolloutPolicy struct {
	// MaxUnavailable bounds the members out of service (trying an image)
	// at once: a count or a percentage of the group (default 1).
	MaxUnavailable Quantity `yaml:"maxUnavailable"`
	// HealthTimeout is how long one boot of a trial may take to report
	// healthy (default DefaultHealthTimeout).
	HealthTimeout time.Duration `yaml:"healthTimeout"`
	// Attempts is how many boots a trial gets on each node (default DefaultAttempts).
	Attempts int `yaml:"attempts"`
	// OnFailure is what a node's rolled-back trial does to the rollout.
	OnFailure FailurePolicy `yaml:"onFailure"`
	// Pause waits between a healthy batch and the next (default 0).
	Pause time.Duration `yaml:"pause"`
}

// FailurePolicy is what a failed node does to its rollout.
type FailurePolicy string

// Failure policies.
const (
	OnFailureHalt     FailurePolicy = "halt"     // start no new batch; nodes already committed stay
	OnFailureRollback FailurePolicy = "rollback" // halt, and return the committed nodes to the previous image
)

// Rollout defaults applied by Parse.
const (
	DefaultHealthTimeout = 10 * time.Minute
	DefaultAttempts      = 3
	DefaultOnFailure     = OnFailureHalt
)

// Quantity is a count ("2") or a percentage ("25%") of a group.
type Quantity struct {
	Value   int
	Percent bool
}

// Of resolves the quantity for a group of total members: a percentage
// rounds down but is at least 1, a count is capped at total (and at least 1
// when total is).
func (q Quantity) Of(total int) int {
	n := q.Value
	if q.Percent {
		n = total * q.Value / 100
	}
	return max(min(n, total), min(1, total))
}

// String is the quantity as written in the config.
func (q Quantity) String() string {
	if q.Percent {
		return strconv.Itoa(q.Value) + "%"
	}
	return strconv.Itoa(q.Value)
}

// GroupOf returns the group a node belongs to.
func (c *Config) GroupOf(node string) (*Group, bool) {
	for i := range c.Groups {
		for _, m := range c.Groups[i].Members {
			if m == node {
				return &c.Groups[i], true
			}
		}
	}
	return nil, false
}

func (d *decoder) groups(p *[]Group) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.sequence(n, path, func(n *yaml.Node, path string) {
			g := Group{Line: n.Line, Rollout: defaultRollout}
			d.mapping(n, path, fields{
				"name":     d.str(&g.Name),
				"nodes":    d.strList(&g.Nodes),
				"selector": d.strMap(&g.Selector),
				"image":    d.str(&g.Image),
				"rollout": func(n *yaml.Node, path string) {
					r := &g.Rollout
					d.mapping(n, path, fields{
						"maxUnavailable": d.quantity(&r.MaxUnavailable),
						"healthTimeout":  d.duration(&r.HealthTimeout),
						"attempts":       d.count(&r.Attempts),
						"onFailure":      d.strAs((*string)(&r.OnFailure)),
						"pause":          d.duration(&r.Pause),
					})
				},
			})
			*p = append(*p, g)
		})
	}
}

// strMap decodes a mapping of plain values (labels, selectors).
func (d *decoder) strMap(p *map[string]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errs.at(n, path, "must be a mapping of names to values, like {role: worker}, not %s", kindName(n))
			return
		}
		m := make(map[string]string, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
			kp := join(path, k.Value)
			if _, dup := m[k.Value]; dup {
				d.errs.at(k, kp, "defined twice")
				continue
			}
			d.where[kp] = k
			s, ok := d.scalar(v, kp)
			if ok && k.Kind == yaml.ScalarNode {
				m[k.Value] = s
			}
		}
		*p = m
	}
}

// quantity decodes "N" or "N%".
func (d *decoder) quantity(p *Quantity) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := d.scalar(n, path)
		if !ok || s == "" {
			return
		}
		num, pct := strings.CutSuffix(s, "%")
		v, err := strconv.Atoi(num)
		if err != nil {
			d.errs.at(n, path, "%q is not a count (like 2) or a percentage (like 25%%)", s)
			return
		}
		*p = Quantity{Value: v, Percent: pct}
	}
}

// count decodes a whole number (range checked by validation).
func (d *decoder) count(p *int) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := d.scalar(n, path)
		if !ok || s == "" {
			return
		}
		v, err := strconv.Atoi(s)
		if err != nil {
			d.errs.at(n, path, "%q is not a whole number", s)
			return
		}
		*p = v
	}
}

// defaultRollout is the policy of a group that sets none; the decoder
// starts every group from it, so an explicit 0 is refused rather than
// taken for "unset".
var defaultRollout = RolloutPolicy{MaxUnavailable: Quantity{Value: 1}, HealthTimeout: DefaultHealthTimeout,
	Attempts: DefaultAttempts, OnFailure: DefaultOnFailure}

// labelsString renders labels sorted, for messages.
func labelsString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ",")
}

// selects reports whether a node carries every label of the selector.
func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if lv, ok := labels[k]; !ok || lv != v {
			return false
		}
	}
	return true
}

// describe names a group's members for messages.
func (g *Group) describe() string {
	if len(g.Selector) > 0 {
		return fmt.Sprintf("selector %s", labelsString(g.Selector))
	}
	return fmt.Sprintf("%d named nodes", len(g.Nodes))
}
