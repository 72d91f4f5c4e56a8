package main

import (
	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/ab/rollout"
	"github.com/racklet/racklet-boot/internal/cli"
)

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout status|pause|resume|undo",
		Short: "Watch and steer the staged rollouts of the rack's groups",
		Long: "A group's rollout starts when its image changes in the rack config (editing it back undoes it).\n" +
			"status shows every group with, per node, the slot and image it boots, its A/B state, the\n" +
			"attempts of its trial and the last reason; pause stops new batches, resume goes on (past nodes\n" +
			"that failed, or again after an undo), undo returns the group to the image it ran before.",
	}
	cmd.AddCommand(newRolloutStatusCmd())
	for _, action := range []struct{ name, short string }{
		{"pause", "Start no new batch of the group's rollout (trials under way go on)"},
		{"resume", "Let a paused or halted rollout go on; after an undo, start it again"},
		{"undo", "Return the group to the image it ran before the rollout"},
	} {
		cmd.AddCommand(newRolloutActionCmd(action.name, action.short))
	}
	return cmd
}

func newRolloutStatusCmd() *cobra.Command {
	var a adminFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:     "status",
		Short:   "Show every group's rollout and the A/B state of its nodes",
		Example: "  racklet-boot rollout status\n  racklet-boot rollout status -o json --server http://10.0.0.2 --token-file ~/racklet.token",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.Rollouts(cmd.Context())
			if err != nil {
				return err
			}
			format := out.Format
			if format == "text" {
				format = "table"
			}
			return rollout.Write(cmd.OutOrStdout(), format, st)
		},
	}
	a.register(cmd)
	out.Register(cmd)
	return cmd
}

func newRolloutActionCmd(action, short string) *cobra.Command {
	var a adminFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:     action + " GROUP",
		Short:   short,
		Example: "  racklet-boot rollout " + action + " workers",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			g, err := c.Rollout(cmd.Context(), args[0], action, who())
			if err != nil {
				return err
			}
			format := out.Format
			if format == "text" {
				format = "table"
			}
			return rollout.Write(cmd.OutOrStdout(), format, []rollout.GroupStatus{g})
		},
	}
	a.register(cmd)
	out.Register(cmd)
	return cmd
}
