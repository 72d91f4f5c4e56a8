package ab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/store"
)

var (
	_ Journal = (*store.Bolt)(nil)
	_ Journal = (*store.Memory)(nil)
)

var (
	t0   = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	imgA = Image{Ref: "reg/os:v1", Digest: "sha256:aaaa"}
	imgB = Image{Ref: "reg/os:v2", Digest: "sha256:bbbb"}
	imgC = Image{Ref: "reg/os:v3", Digest: "sha256:cccc"}
)

// clock is a fake clock tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// rig is one node under test with its journal and clock.
type rig struct {
	t   *testing.T
	ctx context.Context
	j   *store.Memory
	c   *clock
	m   *Machine
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, ctx: context.Background(), j: store.NewMemory(), c: &clock{t0}}
	r.reopen()
	if err := r.m.Ensure(r.ctx, map[string]Image{"pi-01": imgA}); err != nil {
		t.Fatal(err)
	}
	return r
}

// reopen loads a new Machine from the same journal (a restart).
func (r *rig) reopen() {
	m, err := Open(r.ctx, r.j, WithClock(r.c.now))
	if err != nil {
		r.t.Fatal(err)
	}
	r.m = m
}

func (r *rig) must(acts []Action, err error) []Action {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
	return acts
}

func (r *rig) assign(img Image, p Policy) []Action {
	r.t.Helper()
	return r.must(r.m.Assign(r.ctx, []Assignment{{Node: "pi-01", Image: img, Policy: p}}))
}

func (r *rig) report(img Image, healthy bool, reason string, hat *hatlink.BootState) []Action {
	r.t.Helper()
	return r.must(r.m.Report(r.ctx, "pi-01", Report{Image: img.Digest, Healthy: healthy, Reason: reason, HAT: hat}))
}

func (r *rig) boot() Decision {
	r.t.Helper()
	d, err := r.m.Boot("pi-01")
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

func (r *rig) node() Node {
	n, _ := r.m.Node("pi-01")
	return n
}

// cycles counts the power-cycle actions for pi-01.
func cycles(acts []Action) int {
	n := 0
	for _, a := range acts {
		if a.Node == "pi-01" && a.Kind == PowerCycle {
			n++
		}
	}
	return n
}

func TestTransitions(t *testing.T) {
	p3 := Policy{Attempts: 3, HealthTimeout: 5 * time.Minute}
	for _, tc := range []struct {
		name  string
		run   func(r *rig) int // returns the power cycles asked for
		boot  Decision
		state State
		out   Outcome
		flag  bool
		why   string // part of the reason
		pc    int    // power cycles asked for
	}{
		{"healthy trial commits and swaps slots", func(r *rig) int {
			n := cycles(r.assign(imgB, p3))
			if d := r.boot(); !d.Trial || d.Attempt != 1 || d.Slot != SlotB || !d.Image.Same(imgB) {
				r.t.Errorf("during the trial: %+v", d)
			}
			return n + cycles(r.report(imgB, true, "", nil))
		}, Decision{Image: imgB, Slot: SlotB}, StateCommitted, OutcomeHealthy, false, "", 1},
		{"three failure reports roll back", func(r *rig) int {
			n := cycles(r.assign(imgB, p3))
			for i := range 3 {
				n += cycles(r.report(imgB, false, "verity refused block 12", &hatlink.BootState{Counter: uint64(10 + i), Limit: 3, Allowed: true}))
			}
			return n
		}, Decision{Image: imgA, Slot: SlotA}, StateRolledBack, OutcomeFailed, true, "attempt 3 of 3: verity refused block 12; rolled back to reg/os:v1", 4},
		{"silence past the deadline uses attempts", func(r *rig) int {
			n := cycles(r.assign(imgB, p3))
			for range 3 {
				r.c.advance(5 * time.Minute)
				n += cycles(r.must(r.m.Tick(r.ctx)))
			}
			return n
		}, Decision{Image: imgA, Slot: SlotA}, StateRolledBack, OutcomeSilent, true, "no health report within 5m0s of attempt 3", 4},
		{"no tick before the deadline", func(r *rig) int {
			n := cycles(r.assign(imgB, p3))
			r.c.advance(5*time.Minute - time.Second)
			return n + cycles(r.must(r.m.Tick(r.ctx)))
		}, Decision{Image: imgB, Slot: SlotB, Trial: true, Attempt: 1, Allowed: 3}, StateTrying, OutcomeNone, false, "", 1},
		{"one failed boot reported twice counts once", func(r *rig) int {
			n := cycles(r.assign(imgB, p3))
			hat := &hatlink.BootState{Counter: 7, Limit: 3, Attempts: [2]byte{0, 1}, Allowed: true}
			n += cycles(r.report(imgB, false, "health check failed", hat))
			return n + cycles(r.report(imgB, false, "health check failed", hat))
		}, Decision{Image: imgB, Slot: SlotB, Trial: true, Attempt: 2, Allowed: 3}, StateTrying, OutcomeFailed, false, "attempt 1 of 3: health check failed", 2},
		{"the HAT's limit caps the attempts", func(r *rig) int {
			n := cycles(r.assign(imgB, Policy{Attempts: 5}))
			return n + cycles(r.report(imgB, false, "attestation refused", &hatlink.BootState{Counter: 3, Limit: 3, Attempts: [2]byte{0, 3}, Allowed: true}))
		}, Decision{Image: imgA, Slot: SlotA}, StateRolledBack, OutcomeFailed, true, "attempt 3 of 3: attestation refused", 2},
		{"an attempt the HAT refused ends the trial at once", func(r *rig) int {
			n := cycles(r.assign(imgB, Policy{Attempts: 5}))
			return n + cycles(r.report(imgB, false, "the HAT refused the attempt", &hatlink.BootState{Counter: 3, Limit: 3, Attempts: [2]byte{0, 3}}))
		}, Decision{Image: imgA, Slot: SlotA}, StateRolledBack, OutcomeSpent, true, "the HAT refused attempt 1 of slot b", 2},
		{"the last allowed attempt may still succeed", func(r *rig) int {
			n := cycles(r.assign(imgB, Policy{Attempts: 2}))
			n += cycles(r.report(imgB, false, "boom", &hatlink.BootState{Counter: 3, Limit: 2, Attempts: [2]byte{0, 1}, Allowed: true}))
			return n + cycles(r.report(imgB, true, "", &hatlink.BootState{Counter: 4, Limit: 2, Attempts: [2]byte{0, 2}, Allowed: true}))
		}, Decision{Image: imgB, Slot: SlotB}, StateCommitted, OutcomeHealthy, false, "", 2},
		{"the HAT counting more attempts advances ours, never fewer", func(r *rig) int {
			n := cycles(r.assign(imgB, p3))
			n += cycles(r.must(r.m.Witness(r.ctx, "pi-01", Witness{Counter: 4, Limit: 3, Attempts: [2]int{0, 2}})))
			return n + cycles(r.must(r.m.Witness(r.ctx, "pi-01", Witness{Counter: 5, Limit: 3, Attempts: [2]int{0, 1}})))
		}, Decision{Image: imgB, Slot: SlotB, Trial: true, Attempt: 2, Allowed: 3}, StateTrying, OutcomeNone, false, "", 1},
		{"assigning the committed image withdraws the trial", func(r *rig) int {
			return cycles(r.assign(imgB, p3)) + cycles(r.assign(imgA, p3))
		}, Decision{Image: imgA, Slot: SlotA}, StateCommitted, OutcomeCancelled, false, "trial of reg/os:v2 withdrawn", 2},
		{"assigning the trial again changes nothing", func(r *rig) int {
			return cycles(r.assign(imgB, p3)) + cycles(r.assign(imgB, p3))
		}, Decision{Image: imgB, Slot: SlotB, Trial: true, Attempt: 1, Allowed: 3}, StateTrying, OutcomeNone, false, "", 1},
		{"a failed image is never tried again", func(r *rig) int {
			n := cycles(r.assign(imgB, Policy{Attempts: 1}))
			n += cycles(r.report(imgB, false, "boom", nil))
			return n + cycles(r.assign(imgB, Policy{Attempts: 1}))
		}, Decision{Image: imgA, Slot: SlotA}, StateRolledBack, OutcomeFailed, true, "boom", 2},
		{"a report of another image moves nothing", func(r *rig) int {
			return cycles(r.assign(imgB, p3)) + cycles(r.report(imgC, false, "boom", nil))
		}, Decision{Image: imgB, Slot: SlotB, Trial: true, Attempt: 1, Allowed: 3}, StateTrying, OutcomeNone, false, "", 1},
		{"a new image after a failed one re-arms the HAT", func(r *rig) int {
			n := cycles(r.assign(imgB, Policy{Attempts: 1}))
			n += cycles(r.report(imgB, false, "boom", &hatlink.BootState{Counter: 2, Limit: 1, Attempts: [2]byte{0, 1}, Allowed: true}))
			return n + cycles(r.assign(imgC, p3))
		}, Decision{Image: imgC, Slot: SlotB, Trial: true, Attempt: 1, Allowed: 3, Rearm: true}, StateTrying, OutcomeFailed, false, "", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			n := tc.run(r)
			if d := cmp.Diff(tc.boot, r.boot()); d != "" {
				t.Errorf("boot decision (-want +got):\n%s", d)
			}
			nd := r.node()
			if nd.State != tc.state || nd.Outcome != tc.out || nd.Flagged != tc.flag || !strings.Contains(nd.Reason, tc.why) {
				t.Errorf("node: state %s outcome %q flagged %v reason %q; want %s %q %v containing %q",
					nd.State, nd.Outcome, nd.Flagged, nd.Reason, tc.state, tc.out, tc.flag, tc.why)
			}
			if n != tc.pc {
				t.Errorf("%d power cycles asked for, want %d", n, tc.pc)
			}
			// Whatever happened, a restart from the journal sees the same.
			r.reopen()
			if d := cmp.Diff(nd, r.node()); d != "" {
				t.Errorf("after a restart (-before +after):\n%s", d)
			}
		})
	}
}
