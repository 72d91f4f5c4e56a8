package server

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	httpboot "github.com/racklet/racklet-boot/boot/http"
	"github.com/racklet/racklet-boot/store"
)

// NodeStatus is what a server knows of one machine: its record, its lease
// and its latest boot events (`racklet-boot nodes`, one row).
type NodeStatus struct {
	store.Node
	Lease  *store.Lease  `json:"lease,omitempty"`
	Events []store.Event `json:"events,omitempty"`
}

// Nodes lists every node the server knows, with its lease and its last
// events (at most events of them), sorted by key.
func (s *Server) Nodes(ctx context.Context, events int) ([]NodeStatus, error) {
	return listNodes(ctx, &nodeReader{inv: s.inv, state: s.state, kube: s.kube}, events)
}

// ReadNodes lists the nodes of a stopped server from its data directory
// (bbolt lets one process at a time open the state).
func ReadNodes(ctx context.Context, dataDir string, events int) ([]NodeStatus, error) {
	st, err := store.OpenBolt(filepath.Join(dataDir, StateFile), store.BoltOptions{OpenTimeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open state in %s (is racklet-boot serve running? then ask it over HTTP): %w", dataDir, err)
	}
	defer st.Close()
	return listNodes(ctx, st, events)
}

func listNodes(ctx context.Context, r httpboot.NodeReader, events int) ([]NodeStatus, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	nodes = dropAdopted(nodes)
	leases, err := r.Leases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]NodeStatus, 0, len(nodes))
	for _, n := range nodes {
		v := NodeStatus{Node: n, Lease: httpboot.LeaseFor(n, leases)}
		if events > 0 {
			if v.Events, err = r.Events(ctx, n.Key, events); err != nil {
				return nil, err
			}
		}
		out = append(out, v)
	}
	sortNodes(out)
	return out, nil
}

type (
	nodeList  = httpboot.NodeList
	eventList = httpboot.EventList
)

func sortNodes(v []NodeStatus) {
	slices.SortFunc(v, func(a, b NodeStatus) int { return strings.Compare(a.Key, b.Key) })
}

// WriteNodeTable writes one line per node: name, kind, MAC, serial,
// address, lease end, last seen, Kubernetes state and last event.
func WriteNodeTable(w io.Writer, nodes []NodeStatus) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tMAC\tSERIAL\tADDRESS\tLEASE UNTIL\tLAST SEEN\tKUBERNETES\tLAST EVENT")
	for _, v := range nodes {
		name := v.Name
		if name == "" {
			name = v.Key + " (discovered)"
		}
		addr, until := v.Addr, "-"
		if v.Lease != nil {
			addr, until = v.Lease.Addr.String(), v.Lease.Expiry.Format(time.DateTime)
		}
		last := "-"
		if n := len(v.Events); n > 0 {
			e := v.Events[n-1]
			last = fmt.Sprintf("%s %s", e.Type, e.Detail)
		}
		seen := "-"
		if !v.LastSeen.IsZero() {
			seen = v.LastSeen.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, dash(v.Kind), dash(v.MAC), dash(v.Serial), dash(addr), until, seen, v.Kubernetes, last)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
