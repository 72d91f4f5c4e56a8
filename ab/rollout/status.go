package rollout

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"

	"github.com/racklet/racklet-boot/ab"
)

// Status reports every group's rollout and members, ordered by group name.
func (c *Controller) Status() []GroupStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []GroupStatus
	for _, name := range sortedKeys(c.groups) {
		g := c.groups[name]
		r := c.rollouts[name]
		if r == nil {
			continue
		}
		v := c.look(g, r)
		gs := GroupStatus{Group: name, Phase: r.Phase, Paused: r.Paused, From: r.From.String(), To: r.To.String(), Batch: r.Batch,
			AtTarget: len(v.atTarget), Trying: len(v.trying) + len(v.cancel), Failed: len(v.failed), Total: len(g.Members), Reason: r.Reason}
		for _, m := range g.Members {
			if ns, ok := NodeStatusOf(c.m, m); ok {
				gs.Nodes = append(gs.Nodes, ns)
			}
		}
		out = append(out, gs)
	}
	return out
}

// NodeStatusOf is one node's A/B state as the status prints it; ok is
// false for a node m has no record of.
func NodeStatusOf(m *ab.Machine, name string) (NodeStatus, bool) {
	n, ok := m.Node(name)
	if !ok {
		return NodeStatus{}, false
	}
	d, _ := m.Boot(name)
	return NodeStatus{Node: name, Slot: d.Slot.String(), Image: d.Image.Digest, Ref: d.Image.Ref,
		Committed: n.Committed.Digest, State: n.State, Attempt: n.Attempt, Allowed: n.Allowed, Flagged: n.Flagged, Reason: n.Reason}, true
}

func sortedKeys(m map[string]Group) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Write prints statuses as a table (one line per group, then its members),
// JSON or YAML, as `racklet-boot rollout status -o table|json|yaml` does.
func Write(w io.Writer, format string, st []GroupStatus) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "yaml":
		enc := yaml.NewEncoder(w)
		defer enc.Close()
		return enc.Encode(st)
	case "table", "":
	default:
		return fmt.Errorf("output format %q: want table, json or yaml", format)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, g := range st {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		phase := string(g.Phase)
		if g.Paused {
			phase += " (paused)"
		}
		fmt.Fprintf(tw, "GROUP %s\t%s\tbatch %d\t%d/%d at %s\t%d trying\t%d failed\n", g.Group, phase, g.Batch, g.AtTarget, g.Total, g.To, g.Trying, g.Failed)
		if g.Reason != "" {
			fmt.Fprintf(tw, "  %s\n", g.Reason)
		}
		fmt.Fprintln(tw, "NODE\tSLOT\tIMAGE\tSTATE\tATTEMPTS\tREASON")
		for _, n := range g.Nodes {
			att := "-"
			if n.Allowed > 0 {
				att = fmt.Sprintf("%d/%d", n.Attempt, n.Allowed)
			}
			state := string(n.State)
			if n.Flagged {
				state += "!"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Node, n.Slot, short(n.Image), state, att, n.Reason)
		}
	}
	return tw.Flush()
}

// short abbreviates a digest for the table: sha256:0123456789ab.
func short(d string) string {
	if algo, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return algo + ":" + hex[:12]
	}
	return d
}
