// Package consolelog keeps each node's serial console, as its HAT captured
// it, in a bounded log per boot beside the boot timeline: files under a
// directory (one per node), numbered by the HAT's boot counter, each kept
// to the newest MaxBytes (line numbers stay those of the whole boot), and
// the newest MaxBoots boots per node. Consoles are not fsynced: losing the
// last second of a console in a crash is fine; a bbolt commit per console
// chunk is not.
//
// Layout: DIR/NODE/boot-N.log (the newest part of boot N), boot-N.old.log
// (the part before it), state.json (where each boot's log starts, and the
// HAT console position read so far).
package consolelog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxBytes = 1 << 20 // per boot
	DefaultMaxBoots = 16      // per node
)

// Options bound a Store; zero fields take the defaults.
type Options struct {
	MaxBytes int64 // console bytes kept per boot (the newest)
	MaxBoots int   // boots kept per node (the newest)
}

// Store is the console logs of every node. Safe for concurrent use.
type Store struct {
	dir  string
	opts Options

	mu    sync.Mutex
	nodes map[string]*nodeState
	subs  map[string]map[chan Chunk]struct{}
}

// Chunk is console output appended to a node's log.
type Chunk struct {
	Node string
	Boot uint64
	Data []byte
}

// Boot describes one kept boot log.
type Boot struct {
	Boot      uint64    `json:"boot"`
	Bytes     int64     `json:"bytes"`     // bytes received in all
	Lines     int       `json:"lines"`     // complete lines received in all
	FirstLine int       `json:"firstLine"` // the first line still kept (1-based)
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
}

// nodeState is a node's state.json.
type nodeState struct {
	Boots []Boot `json:"boots"` // oldest first
	// Position is where the HAT's console was read up to: the boot and the
	// offset of the next byte (hatlink ConsoleRead).
	PosBoot   uint64 `json:"posBoot"`
	PosOffset uint64 `json:"posOffset"`
	kept      int64  // bytes in boot-N.log of the newest boot
}

var nodeName = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,80}$`)

// Open makes (or reopens) the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxBoots <= 0 {
		opts.MaxBoots = DefaultMaxBoots
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("console logs: %w", err)
	}
	return &Store{dir: dir, opts: opts, nodes: map[string]*nodeState{}, subs: map[string]map[chan Chunk]struct{}{}}, nil
}

func (s *Store) nodeDir(node string) string { return filepath.Join(s.dir, node) }

func (s *Store) logPath(node string, boot uint64, old bool) string {
	suffix := ".log"
	if old {
		suffix = ".old.log"
	}
	return filepath.Join(s.nodeDir(node), fmt.Sprintf("boot-%d%s", boot, suffix))
}

// state loads a node's state with s.mu held.
func (s *Store) state(node string) (*nodeState, error) {
	if !nodeName.MatchString(node) {
		return nil, fmt.Errorf("console log: %q is not a node name", node)
	}
	if st, ok := s.nodes[node]; ok {
		return st, nil
	}
	st := &nodeState{}
	data, err := os.ReadFile(filepath.Join(s.nodeDir(node), "state.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("console log of %s: %w", node, err)
	default:
		if err := json.Unmarshal(data, st); err != nil {
			// A torn state file loses the index, not the logs: start over.
			st = &nodeState{}
		}
	}
	if n := len(st.Boots); n > 0 {
		if fi, err := os.Stat(s.logPath(node, st.Boots[n-1].Boot, false)); err == nil {
			st.kept = fi.Size()
		}
	}
	s.nodes[node] = st
	return st, nil
}

func (s *Store) save(node string, st *nodeState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.nodeDir(node), "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.nodeDir(node), "state.json"))
}

// Position returns where the node's HAT console was read up to.
func (s *Store) Position(node string) (boot, offset uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(node)
	if err != nil {
		return 0, 0, err
	}
	return st.PosBoot, st.PosOffset, nil
}

// Append adds console bytes of boot to the node's log and records the HAT
// console position read up to (next). A boot older than the newest kept is
// ignored: a HAT's boot counter never goes back.
func (s *Store) Append(node string, boot uint64, data []byte, next uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(node)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.nodeDir(node), 0o750); err != nil {
		return fmt.Errorf("console log of %s: %w", node, err)
	}
	now := time.Now().UTC()
	n := len(st.Boots)
	switch {
	case n > 0 && boot < st.Boots[n-1].Boot:
		return nil
	case n == 0 || boot > st.Boots[n-1].Boot:
		st.Boots = append(st.Boots, Boot{Boot: boot, FirstLine: 1, Started: now})
		st.kept = 0
		for len(st.Boots) > s.opts.MaxBoots {
			os.Remove(s.logPath(node, st.Boots[0].Boot, false))
			os.Remove(s.logPath(node, st.Boots[0].Boot, true))
			st.Boots = st.Boots[1:]
		}
	}
	b := &st.Boots[len(st.Boots)-1]
	st.PosBoot, st.PosOffset = boot, next
	b.Updated = now
	if len(data) > 0 {
		if st.kept+int64(len(data)) > s.opts.MaxBytes/2 && st.kept > 0 {
			if err := s.rotate(node, b); err != nil {
				return err
			}
			st.kept = 0
		}
		f, err := os.OpenFile(s.logPath(node, boot, false), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return fmt.Errorf("console log of %s: %w", node, err)
		}
		_, werr := f.Write(data)
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return fmt.Errorf("console log of %s: %w", node, werr)
		}
		st.kept += int64(len(data))
		b.Bytes += int64(len(data))
		b.Lines += bytes.Count(data, []byte{'\n'})
	}
	if err := s.save(node, st); err != nil {
		return fmt.Errorf("console log of %s: %w", node, err)
	}
	if len(data) > 0 {
		for ch := range s.subs[node] {
			select {
			case ch <- Chunk{Node: node, Boot: boot, Data: append([]byte(nil), data...)}:
			default: // a slow follower misses output rather than stall the console
			}
		}
	}
	return nil
}

// rotate drops the older half of a boot's log: boot-N.log becomes
// boot-N.old.log, and the lines of the replaced old part are counted as dropped.
func (s *Store) rotate(node string, b *Boot) error {
	old := s.logPath(node, b.Boot, true)
	if f, err := os.Open(old); err == nil {
		n, _ := countLines(f)
		f.Close()
		b.FirstLine += n
	}
	if err := os.Rename(s.logPath(node, b.Boot, false), old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("console log of %s: %w", node, err)
	}
	return nil
}

func countLines(f *os.File) (int, error) {
	n := 0
	sc := bufio.NewReader(f)
	buf := make([]byte, 32<<10)
	for {
		k, err := sc.Read(buf)
		n += bytes.Count(buf[:k], []byte{'\n'})
		if err != nil {
			return n, nil
		}
	}
}

// Boots lists the node's kept boot logs, oldest first.
func (s *Store) Boots(node string) ([]Boot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(node)
	if err != nil {
		return nil, err
	}
	return slices.Clone(st.Boots), nil
}

// Log is one boot's kept console: Text starts at line FirstLine of the boot.
type Log struct {
	Boot
	Text []byte `json:"text"`
}

// ErrNoBoot is returned for a boot the store does not keep.
var ErrNoBoot = errors.New("no console log for that boot")

// Read returns a boot's kept console; boot 0 means the newest.
func (s *Store) Read(node string, boot uint64) (Log, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(node)
	if err != nil {
		return Log{}, err
	}
	i := len(st.Boots) - 1
	if boot != 0 {
		i = slices.IndexFunc(st.Boots, func(b Boot) bool { return b.Boot == boot })
	}
	if i < 0 {
		kept := make([]uint64, len(st.Boots))
		for j, b := range st.Boots {
			kept[j] = b.Boot
		}
		return Log{}, fmt.Errorf("%w: node %s, boot %d (kept: %v)", ErrNoBoot, node, boot, kept)
	}
	l := Log{Boot: st.Boots[i]}
	for _, old := range []bool{true, false} {
		b, err := os.ReadFile(s.logPath(node, l.Boot.Boot, old))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return Log{}, fmt.Errorf("console log of %s: %w", node, err)
		}
		l.Text = append(l.Text, b...)
	}
	return l, nil
}

// Subscribe delivers what is appended to node's log from now on, until
// cancel is called. A follower that does not keep up misses chunks.
func (s *Store) Subscribe(node string) (<-chan Chunk, func()) {
	ch := make(chan Chunk, 256)
	s.mu.Lock()
	if s.subs[node] == nil {
		s.subs[node] = map[chan Chunk]struct{}{}
	}
	s.subs[node][ch] = struct{}{}
	s.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs[node], ch)
			s.mu.Unlock()
		})
	}
}
