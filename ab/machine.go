package ab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// KeyPrefix starts the journal key of every node record ("node/<name>").
const KeyPrefix = "node/"

// ErrUnknownNode is returned for a node the Machine has no record of.
var ErrUnknownNode = errors.New("node has no A/B record")

// Option configures Open.
type Option func(*Machine)

// WithClock sets the time source (default time.Now): tests pass a fake clock.
func WithClock(now func() time.Time) Option { return func(m *Machine) { m.now = now } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(m *Machine) { m.log = l } }

// WithCrashHook sets a function called at each crash point of a transition:
// "journal" right before its journal write, "applied" right after it, before
// anything else changes. Kill tests (here and in ab/rollout) SIGKILL the
// process there; nothing else should set it.
func WithCrashHook(h func(point string)) Option { return func(m *Machine) { m.hook = h } }

// Machine holds the A/B state of every node. It is safe for concurrent use.
// Transitions are computed one at a time and journaled before they take
// effect; transitions that arrive while a journal write is under way are
// written together in the next one (group commit), so a rack's agents
// reporting at once share commits and fsyncs.
type Machine struct {
	j    Journal
	now  func() time.Time
	log  *slog.Logger
	hook func(string)

	mu sync.Mutex
	// nodes is the durable state: what reads (Boot, Node, Pending) see.
	// latest adds the transitions computed but not yet journaled: what
	// the next transition is computed from. Records are never changed in
	// place, only replaced.
	nodes, latest map[string]*Node
	batch         *batch // transitions waiting for the next journal write
	writing       bool   // a caller is writing batches
	trans         int64  // transitions made durable by this process
}

// batch is the transitions of one journal write.
type batch struct {
	recs  []store.Record
	nodes []*Node
	done  chan struct{}
	err   error
}

// Open loads every node record from j.
func Open(ctx context.Context, j Journal, opts ...Option) (*Machine, error) {
	m := &Machine{j: j, now: time.Now, log: slog.New(slog.DiscardHandler), hook: func(string) {}, nodes: map[string]*Node{}, latest: map[string]*Node{}}
	for _, o := range opts {
		o(m)
	}
	recs, err := j.Records(ctx, KeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("load A/B state: %w", err)
	}
	for _, r := range recs {
		var n Node
		if err := json.Unmarshal(r.Data, &n); err != nil {
			return nil, fmt.Errorf("load A/B state: record %s is corrupt: %w", r.Key, err)
		}
		if n.Name != strings.TrimPrefix(r.Key, KeyPrefix) || n.Seq != r.Seq {
			return nil, fmt.Errorf("load A/B state: record %s holds node %q at transition %d, not %d", r.Key, n.Name, n.Seq, r.Seq)
		}
		m.nodes[n.Name] = &n
		m.latest[n.Name] = &n
	}
	return m, nil
}

// Record encodes a node for the journal. Callers that journal their own
// state with a transition (ab/rollout) use it for the records they pass as
// extra.
func Record(key string, seq uint64, v any) (store.Record, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return store.Record{}, fmt.Errorf("encode %s: %w", key, err)
	}
	return store.Record{Key: key, Seq: seq, Data: data}, nil
}

// Ensure gives each named node a record committed to its image, when it has
// none yet: the image a node first boots is its committed image. Nodes that
// already have a record are left alone (Assign changes images).
func (m *Machine) Ensure(ctx context.Context, nodes map[string]Image) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.begin()
	for name, img := range nodes {
		if _, ok := m.latest[name]; ok {
			continue
		}
		if name == "" || img.IsZero() {
			return fmt.Errorf("a/b record for node %q: needs a name and an image digest", name)
		}
		t.create(&Node{Name: name, CommittedSlot: SlotA, Committed: img, State: StateCommitted})
	}
	_, err := t.commit(ctx)
	return err
}

// Assignment asks for a node to boot an image.
type Assignment struct {
	Node   string
	Image  Image
	Policy Policy
}

// Assign moves each node toward its image, in one journal commit together
// with extra records. An image that is the node's committed one withdraws a
// running trial (the node is power-cycled back to it); an image that is the
// current trial, or the trial that already failed, changes nothing; any other
// image starts a trial at attempt 1 and power-cycles the node into it —
// unless the node's HAT says the trial slot's budget is spent by that image
// or by one this server has no record of, in which case the trial is refused
// and the node flagged.
func (m *Machine) Assign(ctx context.Context, as []Assignment, extra ...store.Record) ([]Action, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.begin()
	for _, a := range as {
		cur, ok := m.latest[a.Node]
		if !ok {
			return nil, fmt.Errorf("assign %s to node %s: %w", a.Image, a.Node, ErrUnknownNode)
		}
		if a.Image.IsZero() {
			return nil, fmt.Errorf("assign to node %s: no image digest", a.Node)
		}
		p := a.Policy.withDefaults()
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("assign %s to node %s: %w", a.Image, a.Node, err)
		}
		switch {
		case a.Image.Same(cur.Committed):
			if cur.State == StateTrying {
				n := t.edit(a.Node)
				n.State, n.Outcome, n.Reason, n.Deadline = StateCommitted, OutcomeCancelled, "trial of "+cur.Trial.String()+" withdrawn", time.Time{}
				n.Trial, n.Returning = Image{}, t.now.Add(n.Timeout)
				t.powerCycle(a.Node)
			} else if cur.State == StateRolledBack || cur.Flagged {
				n := t.edit(a.Node) // back on the committed image by choice: clear the flag
				n.State, n.Flagged, n.Trial = StateCommitted, false, Image{}
			}
		case a.Image.Same(cur.Trial) && (cur.State == StateTrying || cur.State == StateRolledBack):
			// already trying it, or it already failed here: never again
		default:
			n := t.edit(a.Node)
			n.Trial, n.Allowed, n.Timeout, n.Attempt = a.Image, p.Attempts, p.HealthTimeout, 0
			n.Flagged = false
			if n.HAT.spent(n.TrialSlot()) && !n.Rearm {
				if n.SpentBy == "" || n.SpentBy == a.Image.Digest {
					by := "an image this server has no record of"
					if n.SpentBy != "" {
						by = "this image"
					}
					n.State, n.Outcome, n.Flagged, n.Deadline = StateRolledBack, OutcomeRefused, true, time.Time{}
					n.Reason = fmt.Sprintf("the HAT says slot %s spent its %d attempts (%s): trial not started", n.TrialSlot(), n.HAT.Limit, by)
					continue
				}
				n.Rearm = true
			}
			if n.HAT != nil && n.HAT.Attempts[n.TrialSlot()] > 0 {
				n.Rearm = true // another image's attempts are on the HAT's counter
			}
			m.startAttempt(t, n)
		}
	}
	return t.commit(ctx, extra...)
}

// startAttempt begins the node's next trial attempt: deadline, power cycle.
func (m *Machine) startAttempt(t *tx, n *Node) {
	n.State = StateTrying
	n.Attempt++
	n.Deadline = t.now.Add(n.Timeout)
	t.powerCycle(n.Name)
}

// Boot says what the node boots now. It changes nothing: attempts are
// counted when they start (Assign, a failure, a deadline), not per request,
// so the many files of one boot all come from the same image.
func (m *Machine) Boot(name string) (Decision, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[name]
	if !ok {
		return Decision{}, fmt.Errorf("boot decision for node %s: %w", name, ErrUnknownNode)
	}
	if n.State == StateTrying {
		return Decision{Image: n.Trial, Slot: n.TrialSlot(), Trial: true, Attempt: n.Attempt, Allowed: n.Allowed, Rearm: n.Rearm}, nil
	}
	return Decision{Image: n.Committed, Slot: n.CommittedSlot}, nil
}

// Expect is the image whose measurements attestation must expect of the
// node: the one it is being served now.
func (m *Machine) Expect(name string) (Image, error) {
	d, err := m.Boot(name)
	return d.Image, err
}

// Node returns a copy of the node's record.
func (m *Machine) Node(name string) (Node, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.nodes[name]
	if !ok {
		return Node{}, false
	}
	return *n, true
}

// Nodes returns a copy of every record, ordered by name.
func (m *Machine) Nodes() []Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Node, 0, len(m.nodes))
	for _, n := range m.nodes {
		out = append(out, *n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Transitions counts the node transitions this Machine has made.
func (m *Machine) Transitions() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.trans
}
