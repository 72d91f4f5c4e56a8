package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes of every racklet command; ExitHelp documents them in --help.
const (
	ExitOK       = 0  // success
	ExitFailure  = 1  // the operation failed: network, I/O, a server's error
	ExitUsage    = 64 // unknown command or flag, wrong arguments (sysexits EX_USAGE)
	ExitNotFound = 66 // a file, image, tag or node that does not exist (EX_NOINPUT)
	ExitInternal = 70 // racklet itself failed: a bug (EX_SOFTWARE)
	ExitRefused  = 77 // refused by policy: a signature, trust rule or attestation said no (EX_NOPERM)
)

// ExitHelp is the "Exit status" section every command's --help ends with.
const ExitHelp = `
Exit status:
  0   success
  1   the operation failed (network, I/O, a server's error)
  64  usage: unknown command or flag, wrong arguments
  66  not found: a file, image, tag or node that does not exist
  70  internal error: a bug in racklet (please report it)
  77  refused by policy: a signature, trust rule or attestation said no
`

// Errors commands wrap (with %w) to choose their exit code; errors.Is
// matches them. Errors wrapping fs.ErrNotExist are "not found" too, and
// those wrapping fs.ErrPermission "refused".
var (
	ErrUsage    = errors.New("usage")
	ErrNotFound = errors.New("not found")
	ErrRefused  = errors.New("refused")
)

// Usagef returns a usage error (exit 64): a flag combination or argument
// the command cannot take.
func Usagef(format string, args ...any) error {
	return fmt.Errorf("%w", &usageError{fmt.Sprintf(format, args...)})
}

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

// NotFound marks err as "not found" (exit 66), keeping its message.
func NotFound(err error) error { return marked{err, ErrNotFound} }

// Refused marks err as "refused by policy" (exit 77), keeping its message.
func Refused(err error) error { return marked{err, ErrRefused} }

type marked struct{ err, kind error }

func (m marked) Error() string        { return m.err.Error() }
func (m marked) Unwrap() []error      { return []error{m.err, m.kind} }
func (m marked) Is(target error) bool { return target == m.kind }

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

// Classifiers map errors of a command's libraries to exit codes (0 for
// "not mine"); a command adds its own before Main.
var Classifiers []func(error) int

// ExitCode is the exit status for err: an *ExitError's Code; usage,
// not found and refused as marked (or as a Classifier says); else 1.
func ExitCode(err error) int {
	var ee *ExitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, ErrUsage):
		return ExitUsage
	}
	for _, c := range Classifiers {
		if code := c(err); code != 0 {
			return code
		}
	}
	switch {
	case errors.Is(err, ErrRefused), errors.Is(err, fs.ErrPermission):
		return ExitRefused
	case errors.Is(err, ErrNotFound), errors.Is(err, fs.ErrNotExist):
		return ExitNotFound
	}
	return ExitFailure
}

// Prepare readies a command tree for Main (tests call it to run commands
// as Main would): every command's --help ends with ExitHelp, and an error
// returned before a command's Run started (a bad flag, a missing or extra
// argument, an unknown command) is a usage error.
func Prepare(root *cobra.Command) {
	root.SilenceUsage, root.SilenceErrors = true, true
	// A usage function, not a template: a cobra template runs text/template, whose
	// reflect.Value.MethodByName keeps every exported method of every type in the binary
	// (the linker's dead-code elimination gives up); racklet-agent, the initramfs's /init,
	// was 3.1 MB (a quarter) larger for it (12.0 MB, 9.0 MB without; amd64, stripped).
	usage := root.UsageFunc()
	root.SetUsageFunc(func(c *cobra.Command) error {
		if err := usage(c); err != nil {
			return err
		}
		_, err := fmt.Fprint(c.OutOrStderr(), ExitHelp)
		return err
	})
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usagef("%v", err) })
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if args := c.Args; args != nil {
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return Usagef("%v", err)
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// Execute runs root as Main does and returns the error with its exit code.
// Errors cobra finds before a command runs (an unknown command or a missing
// required flag) are usage errors.
func Execute(ctx context.Context, root *cobra.Command) (code int, err error) {
	var cmd *cobra.Command
	cmd, err = root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK, nil
	}
	if !errors.Is(err, ErrUsage) && !ran(cmd) {
		err = fmt.Errorf("%w", &usageError{err.Error()})
	}
	return ExitCode(err), err
}

// ran reports whether cmd got as far as its Run: cobra has parsed its
// flags and (being runnable) validated its arguments and required flags.
// A root with subcommands asked for an unknown one never runs.
func ran(cmd *cobra.Command) bool {
	if cmd == nil || !cmd.Runnable() || !cmd.Flags().Parsed() {
		return false
	}
	return cmd.ValidateRequiredFlags() == nil && cmd.ValidateArgs(cmd.Flags().Args()) == nil
}

// Main runs root with a context that ends on SIGINT or SIGTERM, prints an
// error as "name: error" and exits with ExitCode's status. A panic is
// printed with its stack and exits 70. It is the one exit path of every
// command.
func Main(name string, root *cobra.Command) {
	Prepare(root)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer func() {
		if r := recover(); r != nil {
			stop()
			fmt.Fprintf(Stderr, "%s: internal error: %v\n%s", name, r, debug.Stack())
			os.Exit(ExitInternal)
		}
	}()
	code, err := Execute(ctx, root)
	stop()
	if err == nil {
		return
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Err != nil {
		fmt.Fprintf(Stderr, "%s: %v\n", name, err)
	}
	os.Exit(code)
}
