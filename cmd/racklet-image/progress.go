package main

import (
	"log/slog"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// reporter shows progress: a progress bar on a terminal, plain log lines otherwise.
type reporter struct {
	log   *slog.Logger
	tty   bool
	stage string
	bar   *progressbar.ProgressBar
	last  time.Time
}

func newReporter(log *slog.Logger) *reporter {
	return &reporter{log: log, tty: term.IsTerminal(int(os.Stderr.Fd()))}
}

// update is an image.Progress / disk.Progress style callback.
func (r *reporter) update(stage string, done, total int64) {
	if stage != r.stage {
		r.finish()
		r.stage = stage
		if r.tty {
			r.bar = progressbar.NewOptions64(total, progressbar.OptionSetDescription(stage),
				progressbar.OptionSetWriter(os.Stderr), progressbar.OptionShowBytes(total > 1<<20 || total < 0),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
		} else {
			r.log.Info("stage", "stage", stage)
		}
	}
	if r.bar != nil {
		if total > 0 {
			r.bar.ChangeMax64(total)
		}
		r.bar.Set64(done)
		return
	}
	if total != 0 && time.Since(r.last) > 5*time.Second {
		r.last = time.Now()
		r.log.Info("progress", "stage", stage, "done", done, "total", total)
	}
}

func (r *reporter) finish() {
	if r.bar != nil {
		r.bar.Finish()
		r.bar = nil
	}
}
