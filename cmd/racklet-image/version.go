package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/internal/version"
)

func newVersionCmd() *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  racklet-image version\n  racklet-image version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			b := version.Get()
			return out.Write(cmd.OutOrStdout(), b, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, "racklet-image", version.String())
				return err
			})
		},
	}
	out.Register(cmd)
	return cmd
}
