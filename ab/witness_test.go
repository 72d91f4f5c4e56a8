package ab

import (
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/store"
)

// TestStateLostHATRefuses plays a server that lost its state: the node's
// simulated HAT spent slot B's budget on a bad image; a fresh server,
// assigned the same image again, learns the HAT state from the committed
// image's report and never serves the trial.
func TestStateLostHATRefuses(t *testing.T) {
	r := newRig(t)
	dev, err := hatsim.Open(t.TempDir()+"/hat.json", hatsim.Options{AttemptLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	hat := func(cmd hatlink.Command, slot byte) hatlink.BootState {
		t.Helper()
		resp := dev.Handle(r.ctx, []byte{byte(cmd), slot})
		if cmd == hatlink.CmdBootState {
			resp = dev.Handle(r.ctx, []byte{byte(cmd)})
		}
		var s hatlink.BootState
		if resp[0] != byte(cmd)|hatlink.RespFlag || s.Decode(resp[1:]) != nil {
			t.Fatalf("HAT answered %x", resp)
		}
		return s
	}
	// The first server: two attempts of imgB, each counted by the HAT, fail.
	r.assign(imgB, Policy{Attempts: 2})
	for range 2 {
		if _, err := dev.PowerCycle(); err != nil {
			t.Fatal(err)
		}
		s := hat(hatlink.CmdBootAttempt, hatlink.SlotB)
		r.report(imgB, false, "health check failed", &s)
	}
	if n := r.node(); n.State != StateRolledBack {
		t.Fatalf("first server: %s, want rolled-back", n.State)
	}
	// The server loses its state; the node runs its committed image.
	r.j = store.NewMemory()
	r.reopen()
	if err := r.m.Ensure(r.ctx, map[string]Image{"pi-01": imgA}); err != nil {
		t.Fatal(err)
	}
	s := hat(hatlink.CmdBootState, 0)
	r.report(imgA, true, "", &s)
	if acts := r.assign(imgB, Policy{Attempts: 2}); len(acts) != 0 {
		t.Errorf("refused trial asked for %v", acts)
	}
	n := r.node()
	if d := r.boot(); d.Trial || n.State != StateRolledBack || n.Outcome != OutcomeRefused || !n.Flagged ||
		!strings.Contains(n.Reason, "no record of") {
		t.Fatalf("after lost state: decision %+v, node %s %s %q", d, n.State, n.Outcome, n.Reason)
	}
	// An operator re-arms: the next trial asks the agent to reset the HAT counter first.
	if err := r.m.Rearm(r.ctx, "pi-01"); err != nil {
		t.Fatal(err)
	}
	r.assign(imgC, Policy{Attempts: 2})
	if d := r.boot(); !d.Trial || !d.Rearm || !d.Image.Same(imgC) {
		t.Fatalf("after re-arm: %+v, want a trial of imgC with rearm", d)
	}
	// The agent re-arms (BootCommit of the committed slot) and counts its attempt.
	hat(hatlink.CmdBootCommit, hatlink.SlotA)
	s = hat(hatlink.CmdBootAttempt, hatlink.SlotB)
	if !s.Allowed {
		t.Fatal("HAT refused the attempt after re-arming")
	}
	r.report(imgC, true, "", &s)
	if d := r.boot(); d.Trial || !d.Image.Same(imgC) || d.Slot != SlotB {
		t.Fatalf("after the healthy report: %+v", d)
	}
}

// TestPendingSurvivesRestart: an action journaled but not acknowledged is
// handed out again after a restart; an acknowledged one is not.
func TestPendingSurvivesRestart(t *testing.T) {
	r := newRig(t)
	acts := r.assign(imgB, Policy{HealthTimeout: time.Minute})
	r.reopen()
	if p := r.m.Pending(); len(p) != 1 || p[0] != acts[0] {
		t.Fatalf("pending after restart %v, want %v", p, acts)
	}
	if err := r.m.Ack(r.ctx, acts...); err != nil {
		t.Fatal(err)
	}
	r.reopen()
	if p := r.m.Pending(); len(p) != 0 {
		t.Fatalf("pending after ack %v", p)
	}
	// An ack of a superseded transition does not clear the newer action.
	r.c.advance(time.Minute)
	newer := r.must(r.m.Tick(r.ctx))
	if err := r.m.Ack(r.ctx, acts...); err != nil {
		t.Fatal(err)
	}
	if p := r.m.Pending(); len(p) != 1 || p[0] != newer[0] {
		t.Fatalf("pending %v, want %v", p, newer)
	}
}

func TestErrors(t *testing.T) {
	r := newRig(t)
	for name, err := range map[string]error{
		"unknown node": func() error { _, err := r.m.Assign(r.ctx, []Assignment{{Node: "pi-99", Image: imgB}}); return err }(),
		"no digest":    func() error { _, err := r.m.Assign(r.ctx, []Assignment{{Node: "pi-01"}}); return err }(),
		"too many attempts": func() error {
			_, err := r.m.Assign(r.ctx, []Assignment{{Node: "pi-01", Image: imgB, Policy: Policy{Attempts: 300}}})
			return err
		}(),
		"boot of unknown":    func() error { _, err := r.m.Boot("pi-99"); return err }(),
		"report of unknown":  func() error { _, err := r.m.Report(r.ctx, "pi-99", Report{}); return err }(),
		"ensure without img": r.m.Ensure(r.ctx, map[string]Image{"pi-02": {}}),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if n := r.node(); n.State != StateCommitted || n.Seq != 1 {
		t.Errorf("failed calls changed the node: %+v", n)
	}
}
