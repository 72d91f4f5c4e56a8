package main

import (
	"log/slog"

	"github.com/racklet/racklet-boot/internal/cli"
)

// reporter shows a build's stages: a progress bar per stage on a terminal,
// a log line per stage (and every few seconds) otherwise. Logs go through
// the same console, so they never break a bar.
type reporter struct {
	log   *slog.Logger
	stage string
	p     *cli.Progress
}

func newReporter(log *slog.Logger) *reporter { return &reporter{log: log} }

// update is an image.Progress style callback.
func (r *reporter) update(stage string, done, total int64) {
	if stage != r.stage {
		r.finish()
		r.stage = stage
		if !cli.Stderr.Terminal() {
			r.log.Info("stage", "stage", stage)
		}
		r.p = cli.Stderr.NewProgress(stage, r.log)
	}
	r.p.Update(done, total)
}

func (r *reporter) finish() {
	if r.p != nil {
		r.p.Done()
		r.p = nil
	}
}
