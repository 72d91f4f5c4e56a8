package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"
)

func TestExitCode(t *testing.T) {
	custom := errors.New("custom")
	Classifiers = append(Classifiers, func(err error) int {
		if errors.Is(err, custom) {
			return ExitRefused
		}
		return 0
	})
	t.Cleanup(func() { Classifiers = Classifiers[:len(Classifiers)-1] })
	_, statErr := os.Stat("/nonexistent/racklet")
	for name, tc := range map[string]struct {
		err  error
		want int
	}{
		"nil":              {nil, ExitOK},
		"plain":            {errors.New("boom"), ExitFailure},
		"usage":            {Usagef("give --dir"), ExitUsage},
		"usage wrapped":    {fmt.Errorf("build: %w", Usagef("give --dir")), ExitUsage},
		"missing file":     {fmt.Errorf("read: %w", statErr), ExitNotFound},
		"marked not found": {NotFound(errors.New("no node pi-09")), ExitNotFound},
		"permission":       {fmt.Errorf("open: %w", fs.ErrPermission), ExitRefused},
		"marked refused":   {Refused(errors.New("nothing released")), ExitRefused},
		"classifier":       {fmt.Errorf("verify: %w", custom), ExitRefused},
		"exit error":       {&ExitError{Code: 2, Err: errors.New("out of attempts")}, 2},
	} {
		if got := ExitCode(tc.err); got != tc.want {
			t.Errorf("%s: ExitCode(%v) = %d, want %d", name, tc.err, got, tc.want)
		}
	}
	if m := NotFound(errors.New("no node pi-09")); m.Error() != "no node pi-09" {
		t.Errorf("NotFound changed the message: %q", m)
	}
}
