package ab

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// change is one node's next record during a transition.
type change struct {
	next   *Node
	action bool // the transition asks for a power cycle
}

// tx collects the changes of one transition (one journal commit).
type tx struct {
	m       *Machine
	now     time.Time
	changes map[string]*change
}

func (m *Machine) begin() *tx {
	return &tx{m: m, now: m.now().UTC(), changes: map[string]*change{}}
}

// edit returns the node's next record for this transition, copying the
// current one the first time.
func (t *tx) edit(name string) *Node {
	if c, ok := t.changes[name]; ok {
		return c.next
	}
	n := *t.m.latest[name]
	if n.HAT != nil {
		w := *n.HAT
		n.HAT = &w
	}
	n.Seq++
	n.Updated = t.now
	t.changes[name] = &change{next: &n}
	return &n
}

// create adds a new node record to the transition.
func (t *tx) create(n *Node) {
	n.Seq, n.Updated = 1, t.now
	t.changes[n.Name] = &change{next: n}
}

// powerCycle marks the node's transition as needing a power cycle.
func (t *tx) powerCycle(name string) {
	c := t.changes[name]
	c.action = true
	c.next.Pending = PowerCycle
}

// commit journals the changes (with extra records, in the same commit),
// then applies them and returns the actions asked for. The changes join the
// open batch; the first caller to find no write under way writes batches
// until none is left, the others wait for theirs. m.mu is held on entry and
// on return, and released while waiting or writing.
func (t *tx) commit(ctx context.Context, extra ...store.Record) ([]Action, error) {
	m := t.m
	if len(t.changes) == 0 && len(extra) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(t.changes))
	for name := range t.changes {
		names = append(names, name)
	}
	sort.Strings(names)
	recs := make([]store.Record, 0, len(names)+len(extra))
	for _, name := range names {
		n := t.changes[name].next
		r, err := Record(KeyPrefix+name, n.Seq, n)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r)
	}
	recs = append(recs, extra...)
	b := m.batch
	if b == nil {
		b = &batch{done: make(chan struct{})}
		m.batch = b
	}
	b.recs = append(b.recs, recs...)
	for _, name := range names {
		m.latest[name] = t.changes[name].next
		b.nodes = append(b.nodes, t.changes[name].next)
	}
	if m.writing {
		m.mu.Unlock()
		<-b.done
		m.mu.Lock()
	} else {
		m.writing = true
		m.flush(context.WithoutCancel(ctx))
	}
	if b.err != nil {
		return nil, b.err
	}
	var acts []Action
	for _, name := range names {
		c := t.changes[name]
		if c.action {
			acts = append(acts, Action{Node: name, Kind: PowerCycle, Seq: c.next.Seq})
		}
		m.log.Info("a/b transition", "node", name, "state", c.next.State, "attempt", c.next.Attempt,
			"committed", c.next.Committed.String(), "trial", c.next.Trial.String(), "outcome", c.next.Outcome, "reason", c.next.Reason)
	}
	return acts, nil
}

// flush writes batches until none is open. Called with m.mu held and
// m.writing set; it releases m.mu during each write. A failed write fails
// its batch and the one built on top of it, and forgets what they staged.
func (m *Machine) flush(ctx context.Context) {
	for m.batch != nil {
		b := m.batch
		m.batch = nil
		m.mu.Unlock()
		m.hook("journal")
		err := m.j.PutRecords(ctx, b.recs...)
		if err == nil {
			m.hook("applied")
		}
		m.mu.Lock()
		if err != nil {
			b.err = fmt.Errorf("journal A/B transition: %w", err)
			if m.batch != nil {
				m.batch.err = b.err
				close(m.batch.done)
				m.batch = nil
			}
			m.latest = maps.Clone(m.nodes)
		} else {
			for _, n := range b.nodes {
				if v, ok := m.nodes[n.Name]; !ok || v.Seq < n.Seq {
					m.nodes[n.Name] = n
				}
				m.trans++
			}
		}
		close(b.done)
	}
	m.writing = false
}
