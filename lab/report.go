package lab

import (
	"fmt"
	"io"
	"time"

	"github.com/racklet/racklet-boot/boot/server"
)

// WriteTable writes the report for people: each node's boot timeline, the
// rack's summary and the server's view of the rack.
func (r *Report) WriteTable(w io.Writer) error {
	for i, res := range r.Results {
		fmt.Fprintf(w, "\n== %s ==\n%s", r.Names[i], res.String())
	}
	fmt.Fprintf(w, "\n%s (rack booted in %s)\n", r.Summary, r.Took.Round(time.Millisecond))
	fmt.Fprintln(w, "\nracklet-boot nodes:")
	return server.WriteNodeTable(w, r.Nodes)
}
