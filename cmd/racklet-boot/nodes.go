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
	var a adminFlags
	var events int
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List known and discovered nodes, their leases and last boot events",
		Long: "List nodes from a running server: over its unix socket in --data-dir, or --server URL with\n" +
			"--token-file. When the server is stopped (no socket answers), straight from its data directory\n" +
			"(bbolt allows one process at a time).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			var nodes []server.NodeStatus
			var err error
			if a.Local() && !socketAnswers(a.SocketPath()) {
				nodes, err = server.ReadNodes(cmd.Context(), a.DataDir, events)
			} else {
				c, cerr := a.client()
				if cerr != nil {
					return cerr
				}
				nodes, err = c.Nodes(cmd.Context(), events)
			}
			if err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), nodes, func(w io.Writer) error { return server.WriteNodeTable(w, nodes) })
		},
	}
	a.register(cmd)
	cmd.Flags().IntVar(&events, "events", 5, "boot events to show per node")
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
