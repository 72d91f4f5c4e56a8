package cli

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Stderr is where every command's logs and progress bars go: standard
// error, shared so that a log line never breaks a bar. While a bar is
// shown, a log line clears it, is written on its own line, and the bar is
// drawn again below it.
var Stderr = NewConsole(os.Stderr, term.IsTerminal(int(os.Stderr.Fd())))

// Console is a terminal (or not) shared by log lines and one progress bar.
type Console struct {
	mu  sync.Mutex
	out io.Writer
	tty bool
	bar []byte // the bar as last drawn, without its leading "\r"; nil when none is shown
}

// NewConsole writes to out; tty says whether out is a terminal (bars are
// drawn only on one).
func NewConsole(out io.Writer, tty bool) *Console { return &Console{out: out, tty: tty} }

// Terminal reports whether the console is a terminal.
func (c *Console) Terminal() bool { return c.tty }

// clearLine returns to the start of the line and erases it.
const clearLine = "\r\x1b[K"

// Write writes log output above the bar, if one is shown.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bar == nil {
		return c.out.Write(p)
	}
	var b bytes.Buffer
	b.WriteString(clearLine)
	b.Write(p)
	if len(p) > 0 && p[len(p)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteByte('\r')
	b.Write(c.bar)
	if _, err := c.out.Write(b.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// barWriter receives a progress bar's drawing and remembers its last line.
type barWriter struct{ c *Console }

func (w barWriter) Write(p []byte) (int, error) {
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	last := p
	if i := bytes.LastIndexAny(p, "\r\n"); i >= 0 {
		last = p[i+1:]
	}
	if len(last) > 0 {
		c.bar = append(c.bar[:0], last...)
	} else if bytes.HasSuffix(p, []byte("\n")) {
		c.bar = nil // the bar finished on its own line
	}
	return c.out.Write(p)
}

// Progress reports one transfer: on a terminal a bar with bytes, rate and
// ETA; elsewhere a log line every few seconds (and none that a bar could
// break). Update is safe to call from several goroutines; call Done once
// the transfer ends.
type Progress struct {
	mu    sync.Mutex
	c     *Console
	log   *slog.Logger
	what  string
	bar   *progressbar.ProgressBar
	total int64
	done  int64
	start time.Time
	last  time.Time
	every time.Duration
}

// NewProgress starts reporting a transfer described by what (e.g. "push
// racklet/os:v1") on c, logging to log when c is not a terminal.
func (c *Console) NewProgress(what string, log *slog.Logger) *Progress {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now()
	return &Progress{c: c, log: log, what: what, start: now, last: now, every: 5 * time.Second}
}

// Update records done of total bytes (total < 0: unknown).
func (p *Progress) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total = done, total
	if !p.c.tty {
		if now := time.Now(); now.Sub(p.last) >= p.every {
			p.last = now
			p.log.Info("progress", "what", p.what, "bytes", done, "total", total, "rate", rate(done, now.Sub(p.start)))
		}
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(barWriter{p.c}),
			progressbar.OptionSetDescription(p.what),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(barWriter{p.c}) }),
		)
	}
	if total > 0 && total != p.bar.GetMax64() {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

// Done ends the report: the bar is completed (or a last log line written).
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.c.mu.Lock()
		p.c.bar = nil
		p.c.mu.Unlock()
		p.bar = nil
		return
	}
	if !p.c.tty && p.done > 0 {
		d := time.Since(p.start)
		p.log.Info("transferred", "what", p.what, "bytes", p.done, "took", d.Round(time.Millisecond), "rate", rate(p.done, d))
	}
}

// rate formats bytes per second over d.
func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	bps := float64(n) / d.Seconds()
	switch {
	case bps >= 1<<30:
		return fmt.Sprintf("%.1f GiB/s", bps/(1<<30))
	case bps >= 1<<20:
		return fmt.Sprintf("%.1f MiB/s", bps/(1<<20))
	case bps >= 1<<10:
		return fmt.Sprintf("%.1f KiB/s", bps/(1<<10))
	}
	return fmt.Sprintf("%.0f B/s", bps)
}
