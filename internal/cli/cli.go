// Package cli holds what racklet's commands share: the logging flags every
// command takes and the process entry point (signals, exit codes).
package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// LogFlags are the --log-format and --log-level flags.
type LogFlags struct {
	Format string // text or json
	Level  string // debug, info, warn or error
}

// Register adds the flags to a command's persistent flags.
func (f *LogFlags) Register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.Format, "log-format", "text", "log format: text or json")
	cmd.PersistentFlags().StringVar(&f.Level, "log-level", "info", "log level: debug, info, warn or error")
}

// Logger returns a logger writing to standard error as the flags say. An
// unknown level or format falls back to info and text, with a warning.
func (f *LogFlags) Logger() *slog.Logger {
	var lvl slog.Level
	levelErr := lvl.UnmarshalText([]byte(f.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	var log *slog.Logger
	switch f.Format {
	case "json":
		log = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	default:
		log = slog.New(slog.NewTextHandler(os.Stderr, opts))
		if f.Format != "text" && f.Format != "" {
			log.Warn("unknown --log-format, using text", "format", f.Format)
		}
	}
	if levelErr != nil && f.Level != "" {
		log.Warn("unknown --log-level, using info", "level", f.Level)
	}
	return log
}

// Main runs root with a context that ends on SIGINT or SIGTERM, prints an
// error as "name: error" and exits non-zero on failure.
func Main(name string, root *cobra.Command) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
