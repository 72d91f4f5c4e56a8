// Package cli holds what racklet's commands share: the process entry point
// (Main: signals, errors, exit codes), the --log-level/--log-format flags
// every command takes and the -o table|json|yaml flag of every command that
// prints data.
package cli

import (
	"context"
	"errors"
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

// ExitError ends the process with Code, printing Err (when not nil) the way
// Main prints every error.
type ExitError struct {
	Code int
	Err  error
}

// Error returns Err's message (or the exit status when Err is nil).
func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *ExitError) Unwrap() error { return e.Err }

// Main runs root with a context that ends on SIGINT or SIGTERM, prints an
// error as "name: error" and exits non-zero on failure: with an
// *ExitError's Code, else 1. It is the one exit path of every command.
func Main(name string, root *cobra.Command) {
	root.SilenceUsage, root.SilenceErrors = true, true
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := root.ExecuteContext(ctx)
	stop()
	if err == nil {
		return
	}
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Err == nil {
			os.Exit(code)
		}
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
	os.Exit(code)
}
