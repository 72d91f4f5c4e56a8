package main

import (
	"fmt"
	"io"

	"github.com/racklet/racklet-boot/internal/cli"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/image/disk"
)

func newPushCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "push DIR REF",
		Short: "Push a built image directory to a registry or oci-layout:DIR[:tag]",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := artifact.Push(cmd.Context(), args[0], args[1], g.registry())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", args[1], d)
			return nil
		},
	}
}

func newPullCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pull REF DIR",
		Short: "Pull an image into a directory, checking every digest",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := artifact.Pull(cmd.Context(), args[0], args[1], g.registry())
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), m.Describe())
			return nil
		},
	}
}

func newInspectCmd(g *globals) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "inspect REF|DIR",
		Short: "Show the manifest of an image",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			m, err := artifact.Inspect(cmd.Context(), args[0], g.registry())
			if err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), m, func(w io.Writer) error {
				_, err := io.WriteString(w, m.Describe())
				return err
			})
		},
	}
	out.Register(cmd)
	return cmd
}

func newFlashCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "flash IMAGE DEVICE",
		Short: "Write a disk image (raw or .zst) to a device and verify it by reading it back",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep := newReporter(g.logger())
			err := disk.Flash(cmd.Context(), args[0], args[1], func(done, total int64) { rep.update("flash", done, total) })
			rep.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s written to %s and verified\n", args[0], args[1])
			return nil
		},
	}
}
