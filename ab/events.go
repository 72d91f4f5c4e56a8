package ab

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Report takes a node agent's report about the boot it runs. The HAT
// state, when the report carries it, is applied first (see Witness); then a
// healthy report of the trial commits it (the slots swap) and a failure
// report of the trial ends the current attempt. It returns the actions the
// caller must perform.
func (m *Machine) Report(ctx context.Context, name string, r Report) ([]Action, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.latest[name]; !ok {
		return nil, fmt.Errorf("report of node %s: %w", name, ErrUnknownNode)
	}
	t := m.begin()
	if r.HAT != nil {
		m.witness(t, name, WitnessOf(*r.HAT))
	}
	cur := m.latest[name]
	if c, ok := t.changes[name]; ok {
		cur = c.next
	}
	trial := cur.State == StateTrying && r.Image == cur.Trial.Digest
	switch {
	case !trial && r.Healthy && r.Image == cur.Committed.Digest && !cur.Returning.IsZero():
		t.edit(name).Returning = time.Time{} // back in service
	case trial && r.Healthy:
		n := t.edit(name)
		n.CommittedSlot, n.Committed = n.TrialSlot(), n.Trial
		n.Trial, n.State, n.Deadline, n.Pending = Image{}, StateCommitted, time.Time{}, ""
		n.Outcome, n.Reason, n.Flagged, n.Rearm = OutcomeHealthy, "", false, false
		if n.HAT != nil { // the agent commits the HAT's slot next: its counters reset
			n.HAT.Committed, n.HAT.Attempts = n.CommittedSlot, [2]int{}
		}
	case trial && r.HAT != nil && r.HAT.Counter != 0 && r.HAT.Counter == cur.LastBoot:
		// the same failed boot reported again: counted once
	case trial:
		n := t.edit(name)
		if r.HAT != nil {
			n.LastBoot = r.HAT.Counter
		}
		reason := r.Reason
		if reason == "" {
			reason = "the node reported a failed boot"
		}
		m.attemptEnded(t, n, OutcomeFailed, reason)
	}
	return t.commit(ctx)
}

// Witness records a HAT A/B state read by the node's agent outside a health
// report (at attestation). It never gives a trial more attempts: the HAT's
// limit caps the attempts allowed, a higher HAT count (the node rebooted on
// its own) advances the attempt number, and a HAT that refused the attempt
// (BootAttempt answered not allowed) ends the trial at once.
func (m *Machine) Witness(ctx context.Context, name string, w Witness) ([]Action, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.latest[name]; !ok {
		return nil, fmt.Errorf("HAT state of node %s: %w", name, ErrUnknownNode)
	}
	t := m.begin()
	m.witness(t, name, w)
	return t.commit(ctx)
}

// witness applies a HAT state within a transition.
func (m *Machine) witness(t *tx, name string, w Witness) {
	cur := m.latest[name]
	if c, ok := t.changes[name]; ok {
		cur = c.next
	}
	if cur.HAT != nil && w.Counter != 0 && w.Counter < cur.HAT.Counter {
		return // older than what we hold
	}
	n := t.edit(name)
	w.Time = t.now
	n.HAT = &w
	if w.Attempts[n.TrialSlot()] < w.Limit {
		n.Rearm = false // re-armed (or never needed)
	}
	if n.State != StateTrying {
		if n.State == StateCommitted && w.Committed != n.CommittedSlot && w.Attempts == [2]int{} {
			// The HAT names the slots: after a lost state this server
			// assumed A, the HAT knows better.
			n.CommittedSlot = w.Committed
		}
		return
	}
	slot := n.TrialSlot()
	switch {
	case n.Rearm:
		// the agent has not re-armed the HAT's counter yet: its count is
		// the previous image's
	case w.Refused:
		n.SpentBy = n.Trial.Digest
		m.rollBack(t, n, OutcomeSpent, fmt.Sprintf("the HAT refused attempt %d of slot %s: it counted %d of %d", n.Attempt, slot, w.Attempts[slot], w.Limit))
	default:
		if w.Limit > 0 && w.Limit < n.Allowed {
			n.Allowed = max(w.Limit, n.Attempt) // the HAT allows no more
		}
		if w.Attempts[slot] > n.Attempt {
			n.Attempt = min(w.Attempts[slot], n.Allowed)
		}
	}
}

// Tick ends every attempt whose deadline has passed as silent, and returns
// the actions the caller must perform. Call it periodically (the server does
// every few seconds; tests with their fake clock).
func (m *Machine) Tick(ctx context.Context) ([]Action, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.begin()
	var due []string
	for name, n := range m.latest {
		if n.State == StateTrying && !n.Deadline.After(t.now) {
			due = append(due, name)
		}
	}
	sort.Strings(due)
	for _, name := range due {
		n := t.edit(name)
		m.attemptEnded(t, n, OutcomeSilent, fmt.Sprintf("no health report within %s of attempt %d", n.Timeout, n.Attempt))
	}
	for name, n := range m.latest {
		if !n.Returning.IsZero() && !n.Returning.After(t.now) {
			// It did not say it is back; stop counting it out of service so
			// rollouts can go on. It stays flagged if its trial failed.
			t.edit(name).Returning = time.Time{}
		}
	}
	return t.commit(ctx)
}

// attemptEnded ends the current attempt unsuccessfully: the next one starts
// while attempts remain, else the trial is rolled back.
func (m *Machine) attemptEnded(t *tx, n *Node, o Outcome, reason string) {
	if n.Attempt < n.Allowed {
		n.Outcome, n.Reason = o, fmt.Sprintf("attempt %d of %d: %s", n.Attempt, n.Allowed, reason)
		m.startAttempt(t, n)
		return
	}
	m.rollBack(t, n, o, fmt.Sprintf("attempt %d of %d: %s", n.Attempt, n.Allowed, reason))
}

// rollBack ends the trial: the node boots its committed image, flagged.
func (m *Machine) rollBack(t *tx, n *Node, o Outcome, reason string) {
	n.State, n.Outcome, n.Reason, n.Flagged, n.Deadline = StateRolledBack, o, reason+"; rolled back to "+n.Committed.String(), true, time.Time{}
	n.Returning = t.now.Add(n.Timeout)
	if n.SpentBy == "" && n.Attempt >= n.Allowed {
		n.SpentBy = n.Trial.Digest
	}
	t.powerCycle(n.Name)
}

// Pending returns every action journaled but not yet acknowledged: after a
// restart, the caller performs them again.
func (m *Machine) Pending() []Action {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Action
	for name, n := range m.nodes {
		if n.Pending != "" {
			out = append(out, Action{Node: name, Kind: n.Pending, Seq: n.Seq})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

// Ack records that actions were performed, in one journal commit. An action
// of an older transition than the node's current one is already superseded.
func (m *Machine) Ack(ctx context.Context, acts ...Action) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.begin()
	for _, a := range acts {
		if n, ok := m.latest[a.Node]; ok && n.Pending == a.Kind && n.Seq == a.Seq {
			t.edit(a.Node).Pending = ""
		}
	}
	_, err := t.commit(ctx)
	return err
}

// Rearm is an operator's decision that a flagged node may try again: its
// failed trial and the HAT's spent budget are forgotten, and the agent is
// told to re-arm the HAT's counter before the next trial.
func (m *Machine) Rearm(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.latest[name]
	if !ok {
		return fmt.Errorf("re-arm node %s: %w", name, ErrUnknownNode)
	}
	if cur.State == StateTrying {
		return fmt.Errorf("re-arm node %s: a trial of %s is under way", name, cur.Trial)
	}
	t := m.begin()
	n := t.edit(name)
	n.State, n.Trial, n.Flagged, n.SpentBy, n.Rearm = StateCommitted, Image{}, false, "", true
	if n.HAT != nil {
		n.HAT.Attempts = [2]int{}
	}
	_, err := t.commit(ctx)
	return err
}
