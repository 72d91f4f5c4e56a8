// Package cli holds what racklet's commands share: the process entry point
// (Main: signals, errors, exit codes), the --log-level/--log-format flags
// every command takes, the -o table|json|yaml flag of every command that
// prints data, and the console that keeps log lines and progress bars apart.
package cli

import (
	"log/slog"

	"github.com/spf13/cobra"
)

// LogFlags are the --log-format and --log-level flags.
type LogFlags struct {
	Format string // text or json
	Level  string // debug, info, warn or error
}

// Register adds the flags to a command's persistent flags. Level and
// Format set beforehand are the defaults (else info and text).
func (f *LogFlags) Register(cmd *cobra.Command) {
	format, level := f.Format, f.Level
	if format == "" {
		format = "text"
	}
	if level == "" {
		level = "info"
	}
	cmd.PersistentFlags().StringVar(&f.Format, "log-format", format, "log format: text or json")
	cmd.PersistentFlags().StringVar(&f.Level, "log-level", level, "log level: debug, info, warn or error")
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
		log = slog.New(slog.NewJSONHandler(Stderr, opts))
	default:
		log = slog.New(slog.NewTextHandler(Stderr, opts))
		if f.Format != "text" && f.Format != "" {
			log.Warn("unknown --log-format, using text", "format", f.Format)
		}
	}
	if levelErr != nil && f.Level != "" {
		log.Warn("unknown --log-level, using info", "level", f.Level)
	}
	return log
}
