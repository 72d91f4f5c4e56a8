package server

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// WriteTimelines writes each node's boot events as a timeline: the time
// of the first event, then each event's offset from it, its type and
// detail (what `racklet-boot nodes NAME` prints). A node with no events
// says so: it has not been seen booting.
func WriteTimelines(w io.Writer, nodes []NodeStatus) error {
	for i, v := range nodes {
		if i > 0 {
			fmt.Fprintln(w)
		}
		name := v.Name
		if name == "" {
			name = v.Key + " (discovered)"
		}
		addr := v.Addr
		if v.Lease != nil {
			addr = v.Lease.Addr.String()
		}
		fmt.Fprintf(w, "%s  kind %s  mac %s  serial %s  ip %s\n", name, dash(v.Kind), dash(v.MAC), dash(v.Serial), dash(addr))
		if len(v.Events) == 0 {
			fmt.Fprintln(w, "  no boot events: the node has not asked for anything yet")
			continue
		}
		start := v.Events[0].Time
		fmt.Fprintf(w, "  from %s\n", start.Format(time.RFC3339))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, e := range v.Events {
			fmt.Fprintf(tw, "  +%.3fs\t%s\t%s\n", e.Time.Sub(start).Seconds(), e.Type, e.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
