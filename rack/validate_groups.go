package rack

import (
	"fmt"
	"regexp"
	"time"
)

// labelKey and labelValue are the shapes of node labels (as Kubernetes
// labels, without its prefix rules).
var (
	labelKey   = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,61}[A-Za-z0-9])?$`)
	labelValue = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$`)
)

// Bounds of a rollout policy.
const (
	minHealthTimeout = 10 * time.Second
	maxHealthTimeout = 24 * time.Hour
	maxAttempts      = 255 // a HAT's 8-bit attempt counter
)

// labels checks the labels of every node.
func (v *validator) labels() {
	for i, n := range v.c.Nodes {
		for k, val := range n.Labels {
			p := fmt.Sprintf("nodes[%d].labels.%s", i, k)
			if !labelKey.MatchString(k) {
				v.at(p, "%q is not a label name: letters, digits and . _ / -, at most 63, starting and ending with a letter or digit", k)
			}
			if !labelValue.MatchString(val) {
				v.at(p, "%q is not a label value: letters, digits and . _ -, at most 63, starting and ending with a letter or digit", val)
			}
		}
	}
}

// groups checks each group, resolves its members, and gives member nodes
// without a boot source the group's image. It runs before nodes(), which
// then checks those nodes' boot sources as usual.
func (v *validator) groups() {
	names := firstUse{}
	member := map[string]int{} // node name -> group index
	nodes := make(map[string]bool, len(v.c.Nodes))
	for _, n := range v.c.Nodes {
		nodes[n.Name] = true
	}
	for i := range v.c.Groups {
		g := &v.c.Groups[i]
		p := fmt.Sprintf("groups[%d]", i)
		switch {
		case g.Name == "":
			v.at(p+".name", "required: a DNS label like workers")
		case !isDNSLabel(g.Name):
			v.at(p+".name", "%q is not a DNS label: use lower-case letters, digits and '-'", g.Name)
		default:
			if j, dup := names[g.Name]; dup {
				v.at(p+".name", "group %s is also defined at line %d; each name must be unique", g.Name, v.c.Groups[j].Line)
			}
			names[g.Name] = i
		}
		v.rolloutPolicy(p+".rollout", &g.Rollout)
		imageOK := false
		switch {
		case g.Image == "":
			v.at(p+".image", "required: the signed image the group runs, as an OCI reference")
		default:
			before := len(v.d.errs.list)
			b := Boot{Image: g.Image}
			v.image(p+".image", &b)
			g.Image, imageOK = b.Image, len(v.d.errs.list) == before
		}
		switch {
		case len(g.Nodes) > 0 && len(g.Selector) > 0:
			v.at(p+".selector", "set only one of nodes (names) or selector (labels)")
			continue
		case len(g.Nodes) == 0 && len(g.Selector) == 0:
			v.at(p, "needs its members: nodes (a list of names) or selector (labels, like {role: worker})")
			continue
		}
		g.Members = nil
		for j, name := range g.Nodes {
			if !nodes[name] {
				v.at(fmt.Sprintf("%s.nodes[%d]", p, j), "no node is named %q", name)
				continue
			}
			v.join(member, g, i, name, fmt.Sprintf("%s.nodes[%d]", p, j))
		}
		for _, n := range v.c.Nodes {
			if len(g.Selector) > 0 && selects(g.Selector, n.Labels) {
				v.join(member, g, i, n.Name, p+".selector")
			}
		}
		if len(g.Selector) > 0 && len(g.Members) == 0 {
			v.at(p+".selector", "%s selects no node: label the nodes, or fix the selector", g.describe())
		}
		for _, m := range g.Members {
			if v.groupBoot == nil {
				v.groupBoot = map[string]bool{}
			}
			v.groupBoot[m] = true
		}
		if imageOK {
			v.giveImage(g)
		}
	}
}

// join adds a node to a group unless it is in another one.
func (v *validator) join(member map[string]int, g *Group, gi int, name, path string) {
	if j, ok := member[name]; ok {
		if j != gi {
			o := v.c.Groups[j]
			v.at(path, "node %s is also in group %s (line %d): a node belongs to at most one group", name, o.Name, o.Line)
		}
		return
	}
	member[name] = gi
	g.Members = append(g.Members, name)
}

// giveImage makes the group's image the boot source of its members.
func (v *validator) giveImage(g *Group) {
	for i := range v.c.Nodes {
		n := &v.c.Nodes[i]
		if !contains(g.Members, n.Name) {
			continue
		}
		p := fmt.Sprintf("nodes[%d].boot", i)
		switch {
		case n.Boot.Dir != "" || n.Boot.FAT != "":
			v.at(p, "node %s is in group %s (line %d), which boots the group's image: remove its dir or fat source", n.Name, g.Name, g.Line)
		case n.Boot.Image != "" && n.Boot.Image != g.Image:
			v.at(p+".image", "node %s is in group %s (line %d): set its image once, in the group", n.Name, g.Name, g.Line)
		default:
			n.Boot.Image = g.Image
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rolloutPolicy checks a group's rollout policy (after defaults).
func (v *validator) rolloutPolicy(p string, r *RolloutPolicy) {
	q := r.MaxUnavailable
	switch {
	case q.Percent && (q.Value < 1 || q.Value > 100):
		v.at(p+".maxUnavailable", "%s is not a percentage from 1%% to 100%%", q)
	case !q.Percent && q.Value < 1:
		v.at(p+".maxUnavailable", "%s: at least one node must be allowed out of service, or nothing can roll out", q)
	}
	if r.HealthTimeout < minHealthTimeout || r.HealthTimeout > maxHealthTimeout {
		v.at(p+".healthTimeout", "%s is outside %s to %s: a boot and its health checks must fit in it", r.HealthTimeout, minHealthTimeout, maxHealthTimeout)
	}
	if r.Attempts < 1 || r.Attempts > maxAttempts {
		v.at(p+".attempts", "%d is outside 1 to %d (the HAT counts attempts in one byte)", r.Attempts, maxAttempts)
	}
	switch r.OnFailure {
	case OnFailureHalt, OnFailureRollback:
	default:
		v.at(p+".onFailure", "%q is not one of halt, rollback", r.OnFailure)
	}
	if r.Pause < 0 {
		v.at(p+".pause", "%s is negative", r.Pause)
	}
}
