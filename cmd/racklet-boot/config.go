package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/rack"
)

// validated is what config validate prints with -o json|yaml.
type validated struct {
	File            string            `json:"file"`
	Valid           bool              `json:"valid"`
	Nodes           int               `json:"nodes,omitempty"`
	DHCPMode        string            `json:"dhcpMode,omitempty"`
	UnknownMachines string            `json:"unknownMachines,omitempty"`
	Errors          []rack.FieldError `json:"errors,omitempty"`
	// Approved are the nodes of the approved-nodes file merged in, and
	// Warnings what was wrong with it (those entries are left out).
	Overlay  string            `json:"overlay,omitempty"`
	Approved []string          `json:"approved,omitempty"`
	Warnings []rack.FieldError `json:"warnings,omitempty"`
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with rack config files"}
	var dataDir string
	var out cli.Output
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a rack config and the approved nodes merged into it; print every error with its line and column",
		Long: "Check a rack config as serve would load it: YAML syntax, unknown fields (with the\n" +
			"nearest known one), values, and the rules across fields; then the approved-nodes file\n" +
			"racklet-boot keeps in its data directory (" + rack.OverlayFile + ", written by racklet-boot\n" +
			"nodes approve) merged into it. Every problem is printed as FILE:LINE:COLUMN: FIELD: MESSAGE;\n" +
			"the exit status is 1 when there is one.",
		Example: `  racklet-boot config validate rack.yaml
  racklet-boot config validate /etc/racklet/rack.yaml -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			cfg, err := rack.Load(args[0])
			var ve *rack.ValidationError
			switch {
			case errors.As(err, &ve) && out.Format != "table" && out.Format != "text":
				if werr := out.Write(cmd.OutOrStdout(), validated{File: args[0], Errors: ve.Errors}, nil); werr != nil {
					return werr
				}
				return &cli.ExitError{Code: cli.ExitFailure}
			case err != nil:
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
			v := validated{File: args[0], Valid: true, Nodes: len(cfg.Nodes), DHCPMode: string(cfg.DHCP.Mode),
				UnknownMachines: string(cfg.UnknownMachines), Warnings: warnings}
			for _, node := range merged.Nodes[len(cfg.Nodes):] {
				v.Approved = append(v.Approved, node.Name)
			}
			if len(v.Approved) > 0 || len(warnings) > 0 {
				v.Overlay = overlay
			}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintf(w, "%s: valid: %d nodes, dhcp mode %s, unknown machines: %s\n",
					v.File, v.Nodes, v.DHCPMode, v.UnknownMachines)
				if v.Overlay != "" {
					fmt.Fprintf(w, "%s: %d approved nodes merged:", overlay, len(v.Approved))
					for _, name := range v.Approved {
						fmt.Fprintf(w, " %s", name)
					}
					fmt.Fprintln(w)
				}
				for _, fe := range warnings {
					fmt.Fprintf(w, "warning: %s\n", fe.String())
				}
				return nil
			})
		},
	}
	validate.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	validate.Flags().StringVar(&dataDir, "data-dir", "", "racklet-boot data directory holding the approved nodes (default: server.dataDir)")
	_ = validate.MarkFlagDirname("data-dir")
	out.Register(validate)
	cmd.AddCommand(validate)
	return cmd
}
