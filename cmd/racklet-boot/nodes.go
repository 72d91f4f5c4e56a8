package main

import (
	"io"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/internal/cli"
)

func newNodesCmd() *cobra.Command {
	var c client
	var events int
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "nodes [NAME...]",
		Short: "List known and discovered nodes, their leases and boot events; a node's boot timeline",
		Long: "List nodes from a running server: over its unix socket in --data-dir, or --server URL with\n" +
			"--token-file. When the server is stopped (no socket answers), straight from its data directory\n" +
			"(bbolt allows one process at a time).\n" +
			"Given node names, print each one's boot timeline instead: every event (DHCP, TFTP and\n" +
			"HTTP files, attestation, agent stages) with its offset from the first, newest --events.",
		Example: `  racklet-boot nodes --server http://10.0.0.2 --token-file ~/racklet.token
  racklet-boot nodes --data-dir /var/lib/racklet -o json
  racklet-boot nodes pi-01 --server http://10.0.0.2 --events 100    # pi-01's boot timeline`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			n := events
			if len(names) > 0 && !cmd.Flags().Changed("events") {
				n = 50 // a timeline wants more than the list's last few
			}
			nodes, err := c.nodes(cmd.Context(), n)
			if err != nil {
				return err
			}
			if nodes, err = pick(nodes, names); err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), nodes, func(w io.Writer) error {
				if len(names) > 0 {
					return server.WriteTimelines(w, nodes)
				}
				return server.WriteNodeTable(w, nodes)
			})
		},
		ValidArgsFunction: c.completeNodes,
	}
	c.register(cmd)
	cmd.Flags().IntVar(&events, "events", 5, "boot events to show per node (50 for a timeline)")
	out.Register(cmd)
	cmd.AddCommand(newPendingCmd(), newApproveCmd())
	return cmd
}

// socketAnswers reports whether a racklet-boot listens on the socket.
func socketAnswers(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
