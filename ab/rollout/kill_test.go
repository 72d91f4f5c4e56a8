package rollout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/racklet/racklet-boot/ab"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/store"
)

// Environment of the child process of TestKillMidRollout.
const (
	childDB     = "RACKLET_ROLLOUT_KILL_CHILD"
	childKillAt = "RACKLET_ROLLOUT_KILL_AT"
	childLog    = "RACKLET_ROLLOUT_KILL_LOG"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childDB); path != "" {
		os.Exit(killChild(path))
	}
	os.Exit(m.Run())
}

// The kill scenario: 12 nodes, batches of 4, v2 bad on pi-006 (batch 2).
var killPolicy = Policy{MaxUnavailable: 4, HealthTimeout: 3 * time.Minute, Attempts: 2, OnFailure: rack.OnFailureHalt}

func killNames() []string {
	var names []string
	for i := range 12 {
		names = append(names, fmt.Sprintf("pi-%03d", i))
	}
	return names
}

// killChild is racklet-boot with its rack in one process: it resumes the
// rollout from the journal and runs it until it halts, killing itself at
// the configured crash point of an A/B transition.
func killChild(path string) int {
	ctx := context.Background()
	killAt, _ := strconv.Atoi(os.Getenv(childKillAt))
	hook := testutil.KillAt(killAt, nil)
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 3 }
	db, err := store.OpenBolt(path, store.BoltOptions{OpenTimeout: 10 * time.Second})
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	logf, err := os.OpenFile(os.Getenv(childLog), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fail(err)
	}
	var m *ab.Machine
	// The clock is derived from the journal, so a resumed run goes on in
	// time: a minute after the latest transition, refreshed between calls
	// (the machine reads it under its lock).
	base, skew := t0, time.Duration(0)
	refresh := func() {
		latest := t0
		for _, n := range m.Nodes() {
			if n.Updated.After(latest) {
				latest = n.Updated
			}
		}
		base = latest.Add(time.Minute)
	}
	clock := func() time.Time { return base.Add(skew) }
	if m, err = ab.Open(ctx, db, ab.WithClock(clock), ab.WithCrashHook(hook)); err != nil {
		return fail(err)
	}
	refresh()
	c, err := New(ctx, m, db, WithClock(clock))
	if err != nil {
		return fail(err)
	}
	g := Group{Name: "workers", Members: killNames(), Image: v2, Policy: killPolicy}
	if len(c.rollouts) == 0 { // the first start ran v1; the config now says v2
		first := g
		first.Image = v1
		if err := c.Apply(ctx, []Group{first}); err != nil {
			return fail(err)
		}
	}
	refresh()
	if err := c.Apply(ctx, []Group{g}); err != nil {
		return fail(err)
	}
	perform := func(acts []ab.Action) error {
		for _, a := range acts {
			refresh()
			d, _ := m.Boot(a.Node)
			if d.Trial {
				fmt.Fprintf(logf, "trial %s %s %d\n", a.Node, d.Image.Ref, d.Attempt)
			}
			r := ab.Report{Image: d.Image.Digest, Healthy: !(a.Node == "pi-006" && d.Image.Same(v2)), Reason: "health check failed"}
			if _, err := m.Report(ctx, a.Node, r); err != nil {
				return err
			}
			if err := m.Ack(ctx, a); err != nil {
				return err
			}
		}
		return nil
	}
	for range 200 {
		if err := perform(m.Pending()); err != nil {
			return fail(err)
		}
		refresh()
		acts, err := c.Step(ctx)
		if err != nil {
			return fail(err)
		}
		out := 0
		for _, n := range m.Nodes() {
			if n.OutOfService() {
				out++
			}
		}
		fmt.Fprintf(logf, "out %d\n", out)
		if err := perform(acts); err != nil {
			return fail(err)
		}
		if len(m.Pending()) > 0 {
			continue
		}
		st := c.Status()[0]
		if st.Phase == PhaseHalted && st.Trying == 0 {
			return 0
		}
		refresh()
		skew = killPolicy.HealthTimeout // let deadlines pass
		_, err = m.Tick(ctx)
		skew = 0
		if err != nil {
			return fail(err)
		}
	}
	return fail(fmt.Errorf("the rollout did not halt in 200 rounds"))
}

func runKillChild(t *testing.T, db, logPath string, killAt int) bool {
	t.Helper()
	_, killed := testutil.Reexec(t, childDB+"="+db, childLog+"="+logPath, fmt.Sprintf("%s=%d", childKillAt, killAt))
	return killed
}

func endState(t *testing.T, db string) ([]ab.Node, []GroupStatus) {
	t.Helper()
	b, err := store.OpenBolt(db, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m, err := ab.Open(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(context.Background(), m, b)
	if err != nil {
		t.Fatal(err)
	}
	c.groups["workers"] = Group{Name: "workers", Members: killNames(), Image: v2, Policy: killPolicy}
	return m.Nodes(), c.Status()
}

// TestKillMidRollout kills the server (kill -9) at every crash point of a
// rollout that halts in its second batch, restarts it on the same state
// file, and checks that it ends where an uninterrupted run ends, that no
// node was assigned the image twice, that no node past the halted batch ever
// tried it, and that no more than maxUnavailable were out of service.
func TestKillMidRollout(t *testing.T) {
	dir := t.TempDir()
	golden := filepath.Join(dir, "golden.db")
	if runKillChild(t, golden, golden+".log", 0) {
		t.Fatal("the uninterrupted run was killed")
	}
	wantNodes, wantStatus := endState(t, golden)
	ignore := []cmp.Option{cmpopts.IgnoreFields(ab.Node{}, "Seq", "Updated", "Returning", "Deadline")}
	kills := 0
	for k := 1; k < 1000; k++ {
		db := filepath.Join(dir, fmt.Sprintf("k%03d.db", k))
		if !runKillChild(t, db, db+".log", k) {
			break
		}
		kills++
		if runKillChild(t, db, db+".log", 0) {
			t.Fatalf("kill at %d: the restarted server was killed", k)
		}
		nodes, status := endState(t, db)
		if d := cmp.Diff(wantNodes, nodes, ignore...); d != "" {
			t.Fatalf("kill at %d: node records differ from the uninterrupted run (-want +got):\n%s", k, d)
		}
		if d := cmp.Diff(wantStatus, status); d != "" {
			t.Fatalf("kill at %d: rollout status differs (-want +got):\n%s", k, d)
		}
		checkKillLog(t, k, db+".log")
	}
	if kills < 20 {
		t.Fatalf("only %d crash points reached", kills)
	}
	t.Logf("killed at each of %d crash points; every restart ended halted with %d/%d at v2: %s",
		kills, wantStatus[0].AtTarget, wantStatus[0].Total, wantStatus[0].Reason)
}

// checkKillLog reads a run's log: trials never restart at attempt 1 once a
// node went past it (a double assignment), only the first two batches try
// v2, and out-of-service counts stay within maxUnavailable.
func checkKillLog(t *testing.T, k int, path string) {
	t.Helper()
	data, _ := os.ReadFile(path)
	last := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "out":
			if n, _ := strconv.Atoi(f[1]); n > killPolicy.MaxUnavailable {
				t.Fatalf("kill at %d: %d nodes out of service, maxUnavailable %d", k, n, killPolicy.MaxUnavailable)
			}
		case len(f) == 4 && f[0] == "trial":
			node, attempt := f[1], f[3]
			a, _ := strconv.Atoi(attempt)
			if a < last[node] {
				t.Fatalf("kill at %d: %s tried attempt %d after attempt %d: assigned twice\n%s", k, node, a, last[node], data)
			}
			last[node] = a
			if node >= "pi-008" {
				t.Fatalf("kill at %d: %s (third batch) tried v2 after the halt", k, node)
			}
		}
	}
}
