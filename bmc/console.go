package bmc

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/store"
)

// Console failure markers: a line holding one makes a boot.failed event
// pointing at the console around it.
var failureMarkers = []struct{ marker, what string }{
	{"Kernel panic - not syncing", "kernel panic"},
	{"racklet-agent: boot failed at", "racklet-agent failed"},
}

// Lines of console shown around a failure.
const (
	refBefore = 30
	refAfter  = 10
)

// lineScanner follows one boot's console line by line: it counts lines
// (so failures can be pointed at) and spots failure markers, also when a
// line arrives in pieces.
type lineScanner struct {
	boot    uint64
	lines   int    // complete lines seen in this boot
	partial []byte // the current incomplete line (bounded)
	found   map[string]bool
}

func (l *lineScanner) reset(boot uint64) {
	if l.boot != boot {
		*l = lineScanner{boot: boot}
	}
}

// feed scans data, returning the failures found: (what, line number, text).
func (l *lineScanner) feed(data []byte) (fails []failure) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			l.partial = append(l.partial, data...)
			if len(l.partial) > 1024 {
				l.partial = l.partial[len(l.partial)-1024:]
			}
			return fails
		}
		line := append(l.partial, data[:i]...)
		l.partial, data = l.partial[:0], data[i+1:]
		l.lines++
		for _, m := range failureMarkers {
			if l.found[m.what] || !bytes.Contains(line, []byte(m.marker)) {
				continue
			}
			if l.found == nil {
				l.found = map[string]bool{}
			}
			l.found[m.what] = true
			fails = append(fails, failure{what: m.what, line: l.lines, text: strings.TrimSpace(string(bytes.ToValidUTF8(line, nil)))})
		}
	}
	return fails
}

type failure struct {
	what string
	line int
	text string
}

// startConsole resumes reading where the log stopped.
func (s *Server) startConsole(sess *session, node string) error {
	if s.opts.Console == nil {
		return nil
	}
	boot, off, err := s.opts.Console.Position(node)
	if err != nil {
		return err
	}
	scan := lineScanner{boot: boot}
	if boots, err := s.opts.Console.Boots(node); err == nil && len(boots) > 0 && boots[len(boots)-1].Boot == boot {
		scan.lines = boots[len(boots)-1].Lines
	}
	sess.st.Lock()
	sess.st.conBoot, sess.st.conOff, sess.st.scan = boot, off, scan
	sess.st.Unlock()
	return nil
}

// readConsole reads what the HAT captured since the last read into the
// node's log, a bounded number of frames per call.
func (s *Server) readConsole(ctx context.Context, sess *session, node string) error {
	if s.opts.Console == nil {
		return nil
	}
	for range 64 {
		sess.st.Lock()
		boot, off := sess.st.conBoot, sess.st.conOff
		sess.st.Unlock()
		sess.mu.Lock()
		ch, err := sess.c.ConsoleRead(ctx, boot, off, hatlink.MaxConsoleChunk)
		sess.mu.Unlock()
		if err != nil {
			return fmt.Errorf("read console: %w", err)
		}
		data := ch.Data
		if lost := lostBytes(boot, off, ch); lost != "" && len(data) > 0 {
			data = append([]byte("\n[racklet-boot: "+lost+"]\n"), data...)
		}
		next := ch.Start + uint64(len(ch.Data))
		if ch.Boot == boot && next == off && len(data) == 0 {
			return nil
		}
		if err := s.opts.Console.Append(node, ch.Boot, data, next); err != nil {
			return err
		}
		sess.st.Lock()
		sess.st.conBoot, sess.st.conOff = ch.Boot, next
		sess.st.scan.reset(ch.Boot)
		fails := sess.st.scan.feed(data)
		sess.st.Unlock()
		for _, f := range fails {
			ref := &store.ConsoleRef{Boot: ch.Boot, From: max(1, f.line-refBefore), To: f.line + refAfter}
			s.log.Warn("boot failure on the console", "node", node, "boot", ch.Boot, "line", f.line, "text", f.text)
			s.event(ctx, node, "boot.failed", fmt.Sprintf("%s (console boot %d, line %d): %s", f.what, ch.Boot, f.line, f.text), ref)
		}
		if len(ch.Data) < hatlink.MaxConsoleChunk {
			return nil
		}
	}
	return nil
}

// lostBytes says what a chunk skipped over, if anything.
func lostBytes(boot, off uint64, ch hatlink.ConsoleChunk) string {
	switch {
	case ch.Boot == boot && ch.Start > off:
		return fmt.Sprintf("%d console bytes lost: the HAT's buffer overflowed before they were read", ch.Start-off)
	case ch.Boot != boot && ch.Start > 0:
		return fmt.Sprintf("the first %d console bytes of boot %d were lost before they were read", ch.Start, ch.Boot)
	}
	return ""
}

// ConsoleRef points at the newest lines of node's console (the lines
// around an event recorded now), or nil when nothing was captured.
func (s *Server) ConsoleRef(node string) *store.ConsoleRef {
	if s.opts.Console == nil {
		return nil
	}
	s.mu.Lock()
	sess := s.sessions[node]
	s.mu.Unlock()
	if sess != nil {
		sess.st.Lock()
		boot, lines, sb := sess.st.conBoot, sess.st.scan.lines, sess.st.scan.boot
		sess.st.Unlock()
		if sb == boot && lines > 0 {
			return &store.ConsoleRef{Boot: boot, From: max(1, lines-refBefore), To: lines + refAfter}
		}
	}
	boots, err := s.opts.Console.Boots(node)
	if err != nil || len(boots) == 0 || boots[len(boots)-1].Lines == 0 {
		return nil
	}
	b := boots[len(boots)-1]
	return &store.ConsoleRef{Boot: b.Boot, From: max(b.FirstLine, b.Lines-refBefore), To: b.Lines + refAfter}
}
