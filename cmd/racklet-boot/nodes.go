package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/internal/cli"
)

func newNodesCmd() *cobra.Command {
	var dataDir, url string
	var events int
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List known and discovered nodes, their leases and last boot events",
		Long: "List nodes from a running server's API (--server) or, when the server is stopped,\n" +
			"straight from its data directory (--data-dir; bbolt allows one process at a time).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			var nodes []server.NodeStatus
			var err error
			if url != "" {
				nodes, err = server.FetchNodes(cmd.Context(), url, events)
			} else {
				nodes, err = server.ReadNodes(cmd.Context(), dataDir, events)
			}
			if err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), nodes, func(w io.Writer) error { return server.WriteNodeTable(w, nodes) })
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "/var/lib/racklet", "racklet-boot data directory (server stopped)")
	cmd.Flags().StringVar(&url, "server", "", "URL of a running racklet-boot, e.g. http://10.0.0.2")
	cmd.Flags().IntVar(&events, "events", 5, "boot events to show per node")
	out.Register(cmd)
	return cmd
}
