package main

import (
	"errors"
	"fmt"
	"io"

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
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with rack config files"}
	var out cli.Output
	validate := &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a rack config; print every error with its line and column",
		Long: "Check a rack config as serve would load it: YAML syntax, unknown fields (with the\n" +
			"nearest known one), values, and the rules across fields. Every problem is printed as\n" +
			"FILE:LINE:COLUMN: FIELD: MESSAGE; the exit status is 1 when there is one.",
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
			v := validated{File: args[0], Valid: true, Nodes: len(cfg.Nodes), DHCPMode: string(cfg.DHCP.Mode), UnknownMachines: string(cfg.UnknownMachines)}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s: valid: %d nodes, dhcp mode %s, unknown machines: %s\n",
					v.File, v.Nodes, v.DHCPMode, v.UnknownMachines)
				return err
			})
		},
	}
	validate.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	}
	out.Register(validate)
	cmd.AddCommand(validate)
	return cmd
}
