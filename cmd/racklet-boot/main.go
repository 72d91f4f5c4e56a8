// Command racklet-boot serves a rack LAN: DHCP (full or proxy), TFTP and HTTP
// for Raspberry Pis and PXE/UEFI/iPXE machines, from a declarative rack config.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/internal/version"
	"github.com/racklet/racklet-boot/rack"
)

func init() { cli.Classifiers = append(cli.Classifiers, exitCode) }

func main() { cli.Main("racklet-boot", newRoot()) }

// exitCode: a config file that does not validate is a failure (1), not a
// missing file, whatever its problems mention.
func exitCode(err error) int {
	if errors.Is(err, rack.ErrInvalid) {
		return cli.ExitFailure
	}
	return 0
}

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
		Long: `racklet-boot serves a rack LAN from a declarative rack config: DHCP (proxy beside a
router, or full), TFTP and HTTP boot files for Raspberry Pi 4/5 and PXE/UEFI/iPXE machines,
signed OS images, attestation of each node's HAT, a node API and Prometheus metrics.`,
	}
	g.log.Register(root)
	root.AddCommand(
		newServeCmd(g),
		newConfigCmd(),
		newNodesCmd(),
		newStateCmd(),
		newPowerCmd(),
		newConsoleCmd(),
		newRolloutCmd(),
		newSimulateCmd(g),
		newLabCmd(),
		newEEPROMCmd(),
		newServerKeyCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  racklet-boot version\n  racklet-boot version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), version.Get(), func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "racklet-boot", version.String())
				return err
			})
		},
	}
	out.Register(cmd)
	return cmd
}
