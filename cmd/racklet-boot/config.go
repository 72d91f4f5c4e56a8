package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/rack"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with rack config files"}
	var dataDir string
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a rack config and the approved nodes merged into it; print every error with its line number",
		Long: "Checks the rack config, then the approved-nodes file racklet-boot keeps in its data directory\n" +
			"(" + rack.OverlayFile + ", written by racklet-boot nodes approve) merged into it, as serve loads them.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := rack.Load(args[0])
			if err != nil {
				return err
			}
			dir := dataDir
			if dir == "" {
				dir = cfg.Server.DataDir
			}
			overlay := filepath.Join(dir, rack.OverlayFile)
			merged, warnings, err := rack.LoadOverlay(cfg, overlay)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s: valid: %d nodes, dhcp mode %s, unknown machines: %s\n",
				args[0], len(cfg.Nodes), cfg.DHCP.Mode, cfg.UnknownMachines)
			if n := len(merged.Nodes) - len(cfg.Nodes); n > 0 || len(warnings) > 0 {
				fmt.Fprintf(w, "%s: %d approved nodes merged:", overlay, n)
				for _, node := range merged.Nodes[len(cfg.Nodes):] {
					fmt.Fprintf(w, " %s", node.Name)
				}
				fmt.Fprintln(w)
			}
			for _, fe := range warnings {
				fmt.Fprintf(w, "warning: %s\n", fe.String())
			}
			return nil
		},
	}
	validate.Flags().StringVar(&dataDir, "data-dir", "", "racklet-boot data directory holding the approved nodes (default: server.dataDir)")
	cmd.AddCommand(validate)
	return cmd
}
