package hatsim

import (
	"sync"

	"github.com/racklet/racklet-boot/hatlink"
)

// DefaultConsoleBuffer is how many console bytes the simulated HAT keeps
// for racklet-boot to read (a real RP2040 has 264 KiB of RAM in all).
const DefaultConsoleBuffer = 64 << 10

// consoleRing keeps the newest console bytes, each run tagged with the boot
// it was captured in and its offset in that boot's console.
type consoleRing struct {
	mu   sync.Mutex
	max  int
	size int
	segs []segment // oldest first; one per boot
	boot uint64    // the boot new bytes belong to
	next uint64    // offset of the next byte of that boot
}

type segment struct {
	boot  uint64
	start uint64 // offset of data[0] in its boot's console
	data  []byte
}

// newBoot starts the console of boot b: later bytes count from offset 0.
func (r *consoleRing) newBoot(b uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.boot, r.next = b, 0
}

// Write appends console bytes of the current boot, dropping the oldest
// bytes past the buffer size. It never fails: a UART has no back-pressure.
func (r *consoleRing) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(p)
	if len(p) > r.max {
		r.next += uint64(len(p) - r.max)
		p = p[len(p)-r.max:]
	}
	if k := len(r.segs); k == 0 || r.segs[k-1].boot != r.boot || r.segs[k-1].start+uint64(len(r.segs[k-1].data)) != r.next {
		r.segs = append(r.segs, segment{boot: r.boot, start: r.next})
	}
	last := &r.segs[len(r.segs)-1]
	last.data = append(last.data, p...)
	r.next += uint64(len(p))
	r.size += len(p)
	for r.size > r.max {
		s := &r.segs[0]
		drop := min(r.size-r.max, len(s.data))
		s.data, s.start = s.data[drop:], s.start+uint64(drop)
		r.size -= drop
		if len(s.data) == 0 {
			r.segs = r.segs[1:]
		}
	}
	return n, nil
}

// read returns the first kept bytes at or after (boot, off), at most max.
func (r *consoleRing) read(boot, off uint64, max int) hatlink.ConsoleChunk {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.segs {
		end := s.start + uint64(len(s.data))
		if s.boot < boot || (s.boot == boot && end <= off) {
			continue
		}
		from := s.start
		if s.boot == boot && off > from {
			from = off
		}
		data := s.data[from-s.start:]
		if len(data) > max {
			data = data[:max]
		}
		return hatlink.ConsoleChunk{Boot: s.boot, Start: from, Data: append([]byte(nil), data...)}
	}
	// Nothing kept from there on: the reader is up to date (or asks for a
	// position this HAT never had), so point it at what comes next.
	return hatlink.ConsoleChunk{Boot: r.boot, Start: r.next}
}
