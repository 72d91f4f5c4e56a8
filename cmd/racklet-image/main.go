// Command racklet-image builds bootable, immutable OS images from OCI base images and moves
// them between output directories, registries, OCI layouts and SD cards:
//
//	racklet-image build --base REF --platform linux/arm64 (--output DIR | --push REF) [--overlay DIR] [--insecure]
//	racklet-image push DIR REF | pull REF DIR | inspect REF|DIR [-o table|json|yaml]
//	racklet-image keygen --out PREFIX | sign REF --key KEY | verify REF --key PUB
//	racklet-image flash IMAGE DEVICE
//	racklet-image version
package main

import (
	"fmt"
	"log/slog"

	"github.com/racklet/racklet-boot/internal/ociref"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/internal/version"
)

func main() { cli.Main("racklet-image", newRoot()) }

// globals are the flags every command shares.
type globals struct {
	log      cli.LogFlags
	insecure bool
}

func (g *globals) logger() *slog.Logger { return g.log.Logger() }

// registry is how the commands reach registries (--insecure).
func (g *globals) registry() ociref.Options { return ociref.Options{Insecure: g.insecure} }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "racklet-image",
		Short: "Build, move and flash immutable OS images for Racklet nodes",
	}
	g.log.Register(root)
	root.PersistentFlags().BoolVar(&g.insecure, "insecure", false, "allow plain-HTTP registries")
	root.AddCommand(newBuildCmd(g), newPushCmd(g), newPullCmd(g), newInspectCmd(g), newFlashCmd(g), newVersionCmd())
	root.AddCommand(signingCommands(g)...)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), "racklet-image", version.String())
			return nil
		},
	}
}
