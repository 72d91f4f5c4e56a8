// Command racklet-image builds bootable, immutable OS images from OCI base images and moves
// them between output directories, registries, OCI layouts and SD cards:
//
//	racklet-image build --base REF --platform linux/arm64 (--output DIR | --push REF) [--overlay DIR] [--insecure]
//	racklet-image push DIR REF | pull REF DIR | inspect REF|DIR [-o json]
//	racklet-image flash IMAGE DEVICE
//	racklet-image version
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "racklet-image:", err)
		os.Exit(1)
	}
}

// globals are the flags every command shares.
type globals struct {
	logFormat string
	logLevel  string
	insecure  bool
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if g.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "racklet-image",
		Short:         "Build, move and flash immutable OS images for Racklet nodes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
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
