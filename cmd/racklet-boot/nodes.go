package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	httpboot "github.com/racklet/racklet-boot/boot/http"
	"github.com/racklet/racklet-boot/store"
)

// nodeView is one row of `racklet-boot nodes`: what the server knows of a
// machine, its lease and its latest boot events.
type nodeView struct {
	store.Node
	Lease  *store.Lease  `json:"lease,omitempty"`
	Events []store.Event `json:"events,omitempty"`
}

func newNodesCmd() *cobra.Command {
	var dataDir, server, output string
	var events int
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List known and discovered nodes, their leases and last boot events",
		Long: "List nodes from a running server's API (--server) or, when the server is stopped,\n" +
			"straight from its data directory (--data-dir; bbolt allows one process at a time).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var views []nodeView
			var err error
			if server != "" {
				views, err = nodesFromAPI(cmd.Context(), server, events)
			} else {
				views, err = nodesFromStore(cmd.Context(), dataDir, events)
			}
			if err != nil {
				return err
			}
			return printNodes(cmd.OutOrStdout(), views, output)
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/racklet", "racklet-boot data directory (server stopped)")
	cmd.Flags().StringVar(&server, "server", "", "URL of a running racklet-boot, e.g. http://10.0.0.2")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().IntVar(&events, "events", 5, "boot events to show per node")
	return cmd
}

func nodesFromStore(ctx context.Context, dataDir string, events int) ([]nodeView, error) {
	st, err := store.OpenBolt(filepath.Join(dataDir, dbName), store.WithOpenTimeout(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("open state in %s (is racklet-boot serve running? then use --server): %w", dataDir, err)
	}
	defer st.Close()
	nodes, err := st.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	leases, err := st.Leases(ctx)
	if err != nil {
		return nil, err
	}
	byMAC := map[string]store.Lease{}
	for _, l := range leases {
		byMAC[l.MAC] = l
	}
	views := make([]nodeView, 0, len(nodes))
	for _, n := range nodes {
		v := nodeView{Node: n}
		if l, ok := byMAC[n.MAC]; ok {
			v.Lease = &l
		}
		if v.Events, err = st.Events(ctx, n.Key, events); err != nil {
			return nil, err
		}
		views = append(views, v)
	}
	return views, nil
}

func nodesFromAPI(ctx context.Context, server string, events int) ([]nodeView, error) {
	base := strings.TrimRight(server, "/")
	var list httpboot.NodeList
	if err := getJSON(ctx, base+"/api/v1/nodes", &list); err != nil {
		return nil, err
	}
	views := make([]nodeView, 0, len(list.Nodes))
	for _, n := range list.Nodes {
		v := nodeView{Node: n.Node, Lease: n.Lease}
		if events > 0 {
			var ev httpboot.EventList
			if err := getJSON(ctx, fmt.Sprintf("%s/api/v1/nodes/%s/events?limit=%d", base, url.PathEscape(n.Key), events), &ev); err != nil {
				return nil, err
			}
			v.Events = ev.Events
		}
		views = append(views, v)
	}
	return views, nil
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
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode: %w", u, err)
	}
	return nil
}

func printNodes(w io.Writer, views []nodeView, output string) error {
	sort.Slice(views, func(i, j int) bool { return views[i].Key < views[j].Key })
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	case "table":
	default:
		return fmt.Errorf("unknown output format %q: use table or json", output)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tMAC\tSERIAL\tADDRESS\tLEASE UNTIL\tLAST SEEN\tLAST EVENT")
	for _, v := range views {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, dash(v.Kind), dash(v.MAC), dash(v.Serial), dash(addr), until, seen, last)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
