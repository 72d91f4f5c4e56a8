package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/rack"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with rack config files"}
	cmd.AddCommand(&cobra.Command{
		Use:   "validate FILE",
		Short: "Check a rack config; print every error with its line number",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := rack.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid: %d nodes, dhcp mode %s, unknown machines: %s\n",
				args[0], len(cfg.Nodes), cfg.DHCP.Mode, cfg.UnknownMachines)
			return nil
		},
	})
	return cmd
}
