package cli

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// screen replays terminal output the way a terminal shows it: "\r" returns
// to the start of the line, ESC[K erases to its end, "\n" ends it. Other
// escape sequences are dropped. It returns the lines as they remain.
func screen(out []byte) []string {
	var lines []string
	var cur []rune
	col := 0
	s := []rune(string(out))
	for i := 0; i < len(s); i++ {
		switch r := s[i]; {
		case r == '\r':
			col = 0
		case r == '\n':
			lines = append(lines, string(cur))
			cur, col = nil, 0
		case r == 0x1b && i+1 < len(s) && s[i+1] == '[':
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			if j < len(s) && s[j] == 'K' {
				cur = cur[:min(col, len(cur))]
			}
			i = j
		case r < 0x20:
		default:
			if col < len(cur) {
				cur[col] = r
			} else {
				cur = append(cur, r)
			}
			col++
		}
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	return lines
}

// TestBarAndLogsOnATerminal runs a progress bar and log lines together on
// a real pseudo-terminal: every log line stays whole on a line of its own,
// and the bar shows bytes, a rate and its time left.
func TestBarAndLogsOnATerminal(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("open a pty: %v", err)
	}
	defer ptm.Close()
	if err := pty.Setsize(ptm, &pty.Winsize{Rows: 40, Cols: 160}); err != nil {
		t.Fatal(err)
	}
	if !term.IsTerminal(int(tty.Fd())) {
		t.Fatal("the pty is not a terminal")
	}
	var buf bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); io.Copy(&buf, ptm) }()

	c := NewConsole(tty, term.IsTerminal(int(tty.Fd())))
	log := slog.New(slog.NewTextHandler(c, nil))
	p := c.NewProgress("push racklet/os:v1", log)
	const total = 64 << 20
	for i := int64(1); i <= 40; i++ {
		p.Update(i*total/40, total)
		if i%4 == 0 {
			log.Info("layer uploaded", "file", "root.squashfs", "n", i)
		}
		time.Sleep(12 * time.Millisecond) // past the bar's 100 ms throttle now and then
	}
	p.Done()
	log.Info("after the bar")
	tty.Close()
	wg.Wait()

	lines := screen(buf.Bytes())
	logs, bars := 0, 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, "msg="):
			if !strings.HasPrefix(l, "time=") || strings.Contains(l, "push racklet") || strings.Contains(l, "%") {
				t.Errorf("a log line was broken by the bar: %q", l)
			}
			logs++
		case strings.Contains(l, "push racklet/os:v1"):
			bars++
			if !strings.Contains(l, "MB") {
				t.Errorf("bar without bytes: %q", l)
			}
		}
	}
	if logs != 11 {
		t.Errorf("%d whole log lines on screen, want 11:\n%s", logs, strings.Join(lines, "\n"))
	}
	if bars == 0 {
		t.Errorf("no bar on screen:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(buf.String(), "MB/s") {
		t.Errorf("the bar never showed a rate:\n%q", buf.String())
	}
}

// TestNoBarOffATerminal: off a terminal there is no bar, only log lines.
func TestNoBarOffATerminal(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := NewConsole(w, term.IsTerminal(int(w.Fd())))
	if c.Terminal() {
		t.Fatal("a pipe is a terminal")
	}
	log := slog.New(slog.NewTextHandler(c, nil))
	p := c.NewProgress("pull racklet/os:v1", log)
	p.every = 0 // a progress line for every update
	p.Update(1<<20, 2<<20)
	log.Info("between")
	p.Update(2<<20, 2<<20)
	p.Done()
	w.Close()
	out, _ := io.ReadAll(r)
	if bytes.ContainsAny(out, "\r\x1b") {
		t.Errorf("terminal control bytes off a terminal:\n%q", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "bytes=1048576 total=2097152") || !strings.Contains(lines[3], "msg=transferred") {
		t.Errorf("log lines:\n%s", out)
	}
}
