package rollout

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/ab"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/store"
)

var (
	t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	v1 = ab.Image{Ref: "reg/os:v1", Digest: "sha256:1111111111111111"}
	v2 = ab.Image{Ref: "reg/os:v2", Digest: "sha256:2222222222222222"}
)

// Simulated timing: a boot takes bootDelay from the power cycle to the
// agent's report; the fleet advances in steps of tick.
const (
	bootDelay = 40 * time.Second
	tick      = 10 * time.Second
)

// fleet is a rack of simulated nodes answering health as told, around one
// Machine and Controller, on a fake clock.
type fleet struct {
	t     testing.TB
	ctx   context.Context
	now   time.Time
	j     ab.Journal
	m     *ab.Machine
	c     *Controller
	names []string
	// bad says whether a node's boot of an image fails its health check;
	// silent whether it never reports.
	bad, silent func(node string, img ab.Image) bool

	reportAt map[string]time.Time // a booting node's report time
	booting  map[string]ab.Decision
	down     map[string]bool     // out of service: power-cycled, not yet healthy
	maxDown  int                 // most nodes down at once
	trials   map[string][]string // per node: "image#attempt" of every trial boot
	// parallel sends the reports due in a round concurrently, as a rack's
	// agents do (their journal writes then share commits).
	parallel bool
}

func newFleet(t testing.TB, n int, j ab.Journal) *fleet {
	f := &fleet{t: t, ctx: context.Background(), now: t0, j: j, reportAt: map[string]time.Time{}, booting: map[string]ab.Decision{},
		down: map[string]bool{}, trials: map[string][]string{},
		bad: func(string, ab.Image) bool { return false }, silent: func(string, ab.Image) bool { return false }}
	for i := range n {
		f.names = append(f.names, fmt.Sprintf("pi-%03d", i))
	}
	f.open()
	return f
}

// open (re)creates Machine and Controller from the journal: a restart.
func (f *fleet) open() {
	clock := func() time.Time { return f.now }
	m, err := ab.Open(f.ctx, f.j, ab.WithClock(clock))
	if err != nil {
		f.t.Fatal(err)
	}
	c, err := New(f.ctx, m, f.j, WithClock(clock))
	if err != nil {
		f.t.Fatal(err)
	}
	f.m, f.c = m, c
}

func (f *fleet) group(img ab.Image, p Policy) Group {
	return Group{Name: "workers", Members: f.names, Image: img, Policy: p}
}

func (f *fleet) apply(img ab.Image, p Policy) {
	f.t.Helper()
	if err := f.c.Apply(f.ctx, []Group{f.group(img, p)}); err != nil {
		f.t.Fatal(err)
	}
}

// perform power-cycles nodes: each goes down and boots what the machine says.
func (f *fleet) perform(acts []ab.Action) {
	f.t.Helper()
	for _, a := range acts {
		d, err := f.m.Boot(a.Node)
		if err != nil {
			f.t.Fatal(err)
		}
		f.down[a.Node], f.booting[a.Node], f.reportAt[a.Node] = true, d, f.now.Add(bootDelay)
		if d.Trial {
			f.trials[a.Node] = append(f.trials[a.Node], fmt.Sprintf("%s#%d", d.Image.Ref, d.Attempt))
		}
	}
	if err := f.m.Ack(f.ctx, acts...); err != nil {
		f.t.Fatal(err)
	}
}

// round advances the clock one tick: due boots report, the controller and
// the machine step, their actions are performed.
func (f *fleet) round() {
	f.t.Helper()
	f.now = f.now.Add(tick)
	var due []string
	reports := map[string]ab.Report{}
	for _, name := range f.names {
		at, ok := f.reportAt[name]
		if !ok || f.now.Before(at) {
			continue
		}
		d := f.booting[name]
		delete(f.reportAt, name)
		if f.silent(name, d.Image) {
			continue // stays down, says nothing
		}
		r := ab.Report{Image: d.Image.Digest, Healthy: !f.bad(name, d.Image)}
		if !r.Healthy {
			r.Reason = "health check failed: racklet-health.service"
		} else {
			delete(f.down, name)
		}
		due, reports[name] = append(due, name), r
	}
	results := make([][]ab.Action, len(due))
	errs := make([]error, len(due))
	var wg sync.WaitGroup
	for i, name := range due {
		send := func() { results[i], errs[i] = f.m.Report(f.ctx, name, reports[name]) }
		if f.parallel {
			wg.Go(send)
		} else {
			send()
		}
	}
	wg.Wait()
	for i := range due {
		if errs[i] != nil {
			f.t.Fatal(errs[i])
		}
		f.perform(results[i])
	}
	acts, err := f.c.Step(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	f.perform(acts)
	acts, err = f.m.Tick(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	f.perform(acts)
	f.maxDown = max(f.maxDown, len(f.down))
}

// run goes round until the group's rollout is in one of the phases and no
// member is trying, failing after limit rounds.
func (f *fleet) run(limit int, phases ...Phase) GroupStatus {
	f.t.Helper()
	for range limit {
		f.round()
		st := f.c.Status()[0]
		for _, p := range phases {
			if st.Phase == p && st.Trying == 0 && len(f.reportAt) == 0 {
				return st
			}
		}
	}
	st := f.c.Status()[0]
	f.t.Fatalf("after %d rounds the rollout is %s (%s), %d trying; want %v", limit, st.Phase, st.Reason, st.Trying, phases)
	return st
}

// committed counts the nodes committed to img.
func (f *fleet) committed(img ab.Image) int {
	n := 0
	for _, nd := range f.m.Nodes() {
		if nd.Committed.Same(img) && nd.State != ab.StateTrying {
			n++
		}
	}
	return n
}

var policy10 = Policy{MaxUnavailable: 10, HealthTimeout: 2 * time.Minute, Attempts: 2, OnFailure: rack.OnFailureHalt}

// TestBadImageInSecondBatchHalts: 100 nodes, batches of 10; v2 fails its
// health check on pi-015, in the second batch. The rollout halts after that
// batch with never more than 10 nodes down; undo brings every node back to v1.
func TestBadImageInSecondBatchHalts(t *testing.T) {
	f := newFleet(t, 100, store.NewMemory())
	f.bad = func(n string, img ab.Image) bool { return n == "pi-015" && img.Same(v2) }
	f.apply(v1, policy10)
	f.apply(v2, policy10)
	st := f.run(200, PhaseHalted)
	if got := f.committed(v2); got != 19 {
		t.Errorf("%d nodes run v2 after the halt, want 19 (batches 1 and 2 but pi-015)", got)
	}
	if n, _ := f.m.Node("pi-015"); n.State != ab.StateRolledBack || !n.Committed.Same(v1) || !n.Flagged {
		t.Errorf("pi-015: %s on %s flagged %v, want rolled back to v1 and flagged", n.State, n.Committed, n.Flagged)
	}
	for _, name := range f.names[20:] {
		if len(f.trials[name]) > 0 {
			t.Fatalf("%s tried %v after the halt", name, f.trials[name])
		}
	}
	if got := f.trials["pi-015"]; fmt.Sprint(got) != "[reg/os:v2#1 reg/os:v2#2]" {
		t.Errorf("pi-015 tried %v, want two attempts of v2", got)
	}
	if f.maxDown > 10 {
		t.Errorf("%d nodes were down at once, maxUnavailable is 10", f.maxDown)
	}
	t.Logf("halted: %s; at most %d down", st.Reason, f.maxDown)

	if err := f.c.Undo(f.ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	f.maxDown = 0
	st = f.run(200, PhaseDone)
	if got := f.committed(v1); got != 100 {
		t.Errorf("%d nodes run v1 after undo, want 100", got)
	}
	if st.To != v1.String() || f.maxDown > 10 {
		t.Errorf("after undo: to %s, at most %d down", st.To, f.maxDown)
	}
	for _, n := range f.m.Nodes() {
		if !n.Committed.Same(v1) || n.State == ab.StateTrying {
			t.Errorf("%s: %s on %s", n.Name, n.State, n.Committed)
		}
	}
}

// TestOnFailureRollback: the same bad node with onFailure: rollback returns
// the group to v1 by itself.
func TestOnFailureRollback(t *testing.T) {
	p := policy10
	p.OnFailure = rack.OnFailureRollback
	f := newFleet(t, 100, store.NewMemory())
	f.bad = func(n string, img ab.Image) bool { return n == "pi-015" && img.Same(v2) }
	f.apply(v1, p)
	f.apply(v2, p)
	st := f.run(300, PhaseDone)
	if got := f.committed(v1); got != 100 || f.maxDown > 10 {
		t.Errorf("%d of 100 run v1, at most %d down (limit 10); reason %s", got, f.maxDown, st.Reason)
	}
}

// TestEditBackIsUndo: editing the config back to v1 mid-rollout undoes it;
// a silent node rolls back on its deadline.
func TestEditBackIsUndo(t *testing.T) {
	f := newFleet(t, 30, store.NewMemory())
	f.silent = func(n string, img ab.Image) bool { return n == "pi-003" && img.Same(v2) }
	f.apply(v1, policy10)
	f.apply(v2, policy10)
	for range 3 {
		f.round()
	}
	f.apply(v1, policy10)
	st := f.run(200, PhaseDone)
	if got := f.committed(v1); got != 30 || st.To != v1.String() {
		t.Errorf("%d of 30 run v1 (to %s)", got, st.To)
	}
	f.apply(v2, policy10)
	f.silent = func(string, ab.Image) bool { return false }
	st = f.run(200, PhaseHalted, PhaseDone)
	// pi-003 already failed v2 silently once? No: its trial was withdrawn by the
	// undo before its deadline, so it gets v2 now like every other node.
	if got := f.committed(v2); got != 30 || st.Phase != PhaseDone {
		t.Errorf("second rollout: %d of 30 run v2, phase %s (%s)", got, st.Phase, st.Reason)
	}
}

// TestPauseResume: a paused rollout starts no batch; resumed, it finishes,
// waiting its pause between batches.
func TestPauseResume(t *testing.T) {
	p := policy10
	p.Pause = 2 * time.Minute
	f := newFleet(t, 30, store.NewMemory())
	f.apply(v1, p)
	f.apply(v2, p)
	f.round()
	if err := f.c.Pause(f.ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	for range 60 {
		f.round()
	}
	if got := f.committed(v2); got != 10 {
		t.Fatalf("paused after batch 1: %d run v2, want 10", got)
	}
	if err := f.c.Resume(f.ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	start := f.now
	f.run(200, PhaseDone)
	// Two more batches, each: boot (40 s, seen on the next 10 s tick) + pause.
	if took := f.now.Sub(start); took < 2*p.Pause {
		t.Errorf("resumed rollout took %s, less than two pauses of %s", took, p.Pause)
	}
	if err := f.c.Pause(f.ctx, "workers"); err == nil {
		t.Error("pausing a finished rollout succeeded")
	}
	if err := f.c.Undo(f.ctx, "nobody"); err == nil {
		t.Error("undo of an unknown group succeeded")
	}
}

// TestUndoHoldsAcrossReload: after an operator's undo the config still
// names v2; applying it again (every reload does) starts nothing, until
// Resume starts the rollout again.
func TestUndoHoldsAcrossReload(t *testing.T) {
	f := newFleet(t, 20, store.NewMemory())
	f.apply(v1, policy10)
	f.apply(v2, policy10)
	f.round()
	if err := f.c.Undo(f.ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	f.run(200, PhaseDone)
	f.apply(v2, policy10)
	for range 20 {
		f.round()
	}
	if st := f.c.Status()[0]; st.Phase != PhaseDone || f.committed(v1) != 20 {
		t.Fatalf("after re-applying the undone image: %s, %d of 20 on v1; want done, all on v1", st.Phase, f.committed(v1))
	}
	if err := f.c.Resume(f.ctx, "workers"); err != nil {
		t.Fatal(err)
	}
	if st := f.run(200, PhaseDone); f.committed(v2) != 20 {
		t.Errorf("resumed: %d of 20 on v2 (%s)", f.committed(v2), st.Reason)
	}
	if err := f.c.Resume(f.ctx, "workers"); err == nil {
		t.Error("resuming a finished rollout succeeded")
	}
}
