package ab

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/store"
)

// netNode is a network-booted node: its HAT is the simulator behind the
// real hatlink client, and its agent does what racklet-agent does with the
// decision it boots (re-arm, count the attempt, run, report).
type netNode struct {
	t   *testing.T
	ctx context.Context
	m   *Machine
	hat *hatlink.Client
	bad map[string]bool // images whose health check fails
	log []string
}

func newNetNode(t *testing.T, m *Machine, limit byte) *netNode {
	dev, err := hatsim.Open(filepath.Join(t.TempDir(), "hat.json"), hatsim.Options{AttemptLimit: limit})
	if err != nil {
		t.Fatal(err)
	}
	c, err := hatlink.NewClient(context.Background(), hatlink.Direct(dev))
	if err != nil {
		t.Fatal(err)
	}
	return &netNode{t: t, ctx: context.Background(), m: m, hat: c, bad: map[string]bool{}}
}

// act performs actions until none is left: each power cycle goes through
// the HAT and the node boots what the machine says.
func (n *netNode) act(acts []Action) {
	n.t.Helper()
	for range 20 {
		if len(acts) == 0 {
			return
		}
		var next []Action
		for _, a := range acts {
			if _, err := n.hat.PowerCycle(n.ctx); err != nil {
				n.t.Fatal(err)
			}
			if err := n.m.Ack(n.ctx, a); err != nil {
				n.t.Fatal(err)
			}
			next = append(next, n.boot()...)
		}
		acts = next
	}
	n.t.Fatal("actions did not settle")
}

// boot is one boot of the node: the agent's part of the A/B protocol.
func (n *netNode) boot() []Action {
	n.t.Helper()
	d, err := n.m.Boot("pi-01")
	if err != nil {
		n.t.Fatal(err)
	}
	r := Report{Image: d.Image.Digest, Healthy: true}
	var s hatlink.BootState
	switch {
	case !d.Trial:
		s, err = n.hat.BootState(n.ctx)
	default:
		if d.Rearm {
			if s, err = n.hat.BootState(n.ctx); err == nil {
				_, err = n.hat.BootCommit(n.ctx, s.Committed) // resets the trial slot's count
			}
		}
		if err == nil {
			s, err = n.hat.BootAttempt(n.ctx, byte(d.Slot))
		}
		switch {
		case err != nil:
		case !s.Allowed:
			r.Healthy, r.Reason = false, "the HAT refused the attempt: budget spent"
		case n.bad[d.Image.Ref]:
			r.Healthy, r.Reason = false, "health check failed"
		}
	}
	if err != nil {
		n.t.Fatal(err)
	}
	n.log = append(n.log, fmt.Sprintf("%s trial=%v attempt=%d healthy=%v", d.Image.Ref, d.Trial, d.Attempt, r.Healthy))
	r.HAT = &s
	acts, err := n.m.Report(n.ctx, "pi-01", r)
	if err != nil {
		n.t.Fatal(err)
	}
	if d.Trial && r.Healthy {
		if _, err := n.hat.BootCommit(n.ctx, byte(d.Slot)); err != nil {
			n.t.Fatal(err)
		}
	}
	return acts
}

// TestNetworkModeWithHAT: a failing image rolls back after its attempts,
// each ended by a HAT power cycle; the node then runs its committed image,
// flagged. A good image after it re-arms the HAT's counter and commits; a
// policy allowing more attempts than the HAT stops at the HAT's limit.
func TestNetworkModeWithHAT(t *testing.T) {
	ctx := context.Background()
	m, err := Open(ctx, store.NewMemory())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx, map[string]Image{"pi-01": imgA}); err != nil {
		t.Fatal(err)
	}
	n := newNetNode(t, m, 3)
	n.bad[imgB.Ref], n.bad[imgC.Ref] = true, true
	counter := func() uint64 { s, _ := n.hat.BootState(ctx); return s.Counter }
	start := counter()

	acts, err := m.Assign(ctx, []Assignment{{Node: "pi-01", Image: imgB, Policy: Policy{Attempts: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	n.act(acts)
	nd, _ := m.Node("pi-01")
	s, _ := n.hat.BootState(ctx)
	if d, _ := m.Boot("pi-01"); d.Trial || !d.Image.Same(imgA) || !nd.Flagged || nd.State != StateRolledBack {
		t.Fatalf("after a failing image: boots %+v, node %s flagged %v", d, nd.State, nd.Flagged)
	}
	if got := counter() - start; got != 4 || s.Attempts[1] != 3 {
		t.Errorf("%d power cycles (want 3 attempts + 1 back), HAT counted %d attempts of slot B (want 3)\n%v", got, s.Attempts[1], n.log)
	}

	// A policy of 5 attempts is cut at the HAT's 3.
	acts, _ = m.Assign(ctx, []Assignment{{Node: "pi-01", Image: imgC, Policy: Policy{Attempts: 5}}})
	n.log = nil
	n.act(acts)
	if nd, _ := m.Node("pi-01"); nd.State != StateRolledBack || nd.Attempt != 3 {
		t.Fatalf("5 allowed, HAT limit 3: %s after %d attempts (%s)\n%v", nd.State, nd.Attempt, nd.Reason, n.log)
	}

	// A good image: the HAT is re-armed, the trial commits, HAT and server agree.
	good := Image{Ref: "reg/os:v4", Digest: "sha256:dddd"}
	acts, _ = m.Assign(ctx, []Assignment{{Node: "pi-01", Image: good}})
	n.act(acts)
	d, _ := m.Boot("pi-01")
	s, _ = n.hat.BootState(ctx)
	if d.Trial || !d.Image.Same(good) || byte(d.Slot) != s.Committed || s.Committed != hatlink.SlotB {
		t.Fatalf("after a good image: boots %+v, HAT committed %d\n%v", d, s.Committed, n.log)
	}
}
