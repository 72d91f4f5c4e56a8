package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
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

// FetchNodes lists the nodes of a running server through its API at base
// (e.g. http://10.0.0.2).
func FetchNodes(ctx context.Context, base string, events int) ([]NodeStatus, error) {
	base = strings.TrimRight(base, "/")
	var list httpboot.NodeList
	if err := getJSON(ctx, base+"/api/v1/nodes", &list); err != nil {
		return nil, err
	}
	out := make([]NodeStatus, 0, len(list.Nodes))
	for _, n := range list.Nodes {
		v := NodeStatus{Node: n.Node, Lease: n.Lease}
		if events > 0 {
			var ev httpboot.EventList
			if err := getJSON(ctx, fmt.Sprintf("%s/api/v1/nodes/%s/events?limit=%d", base, url.PathEscape(n.Key), events), &ev); err != nil {
				return nil, err
			}
			v.Events = ev.Events
		}
		out = append(out, v)
	}
	sortNodes(out)
	return out, nil
}

func sortNodes(v []NodeStatus) {
	slices.SortFunc(v, func(a, b NodeStatus) int { return strings.Compare(a.Key, b.Key) })
}

func getJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ask racklet-boot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", u, err)
	}
	return nil
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
