// Command racklet-boot serves a rack LAN: DHCP (full or proxy), TFTP and HTTP
// for Raspberry Pis and PXE/UEFI/iPXE machines, from a declarative rack config.
package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/internal/version"
)

func main() { cli.Main("racklet-boot", newRoot()) }

// globals are the flags every command shares.
type globals struct {
	log cli.LogFlags
}

func (g *globals) logger() *slog.Logger { return g.log.Logger() }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "racklet-boot",
		Short: "Network-boot a rack of Raspberry Pis and PXE/UEFI/iPXE machines",
	}
	g.log.Register(root)
	root.AddCommand(
		newServeCmd(g),
		newConfigCmd(),
		newNodesCmd(),
		newSimulateCmd(g),
		newLabCmd(),
		&cobra.Command{
			Use:   "version",
			Short: "Print the version",
			Args:  cobra.NoArgs,
			Run: func(cmd *cobra.Command, _ []string) {
				fmt.Fprintln(cmd.OutOrStdout(), "racklet-boot", version.String())
			},
		},
	)
	return root
}
