package ab

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

	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/store"
)

// Environment of the child process of TestKillEveryTransition.
const (
	childDB     = "RACKLET_AB_KILL_CHILD"   // the state database
	childKillAt = "RACKLET_AB_KILL_AT"      // kill -9 at this crash point (1-based); 0: never
	childBoots  = "RACKLET_AB_KILL_BOOTLOG" // where the simulated nodes log their boots
)

func TestMain(m *testing.M) {
	if path := os.Getenv(childDB); path != "" {
		os.Exit(killChild(path))
	}
	os.Exit(m.Run())
}

// scenario: three nodes are assigned imgB; pi-good reports healthy, pi-bad
// reports failures, pi-silent never reports.
var scenarioNodes = []string{"pi-bad", "pi-good", "pi-silent"}

const scenarioTimeout = 3 * time.Minute

// killChild runs the scenario to its end (resuming whatever state the
// database holds), killing itself at the configured crash point.
func killChild(path string) int {
	ctx := context.Background()
	killAt, _ := strconv.Atoi(os.Getenv(childKillAt))
	hook := testutil.KillAt(killAt, nil)
	db, err := store.OpenBolt(path, store.BoltOptions{OpenTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	// The clock is derived from the journal, so a resumed run goes on
	// where the killed one stopped.
	var m *Machine
	now := func() time.Time {
		latest := t0
		for _, n := range m.nodes {
			if n.Updated.After(latest) {
				latest = n.Updated
			}
		}
		return latest.Add(time.Minute)
	}
	m, err = Open(ctx, db, WithClock(func() time.Time { return now() }), WithCrashHook(hook))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	boots, err := os.OpenFile(os.Getenv(childBoots), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fail := func(err error) int { fmt.Fprintln(os.Stderr, err); return 3 }
	ensure := map[string]Image{}
	var as []Assignment
	for _, n := range scenarioNodes {
		ensure[n] = imgA
		as = append(as, Assignment{Node: n, Image: imgB, Policy: Policy{Attempts: 2, HealthTimeout: scenarioTimeout}})
	}
	if err := m.Ensure(ctx, ensure); err != nil {
		return fail(err)
	}
	if _, err := m.Assign(ctx, as); err != nil {
		return fail(err)
	}
	for range 100 {
		acts := m.Pending()
		trying := false
		for _, n := range m.Nodes() {
			trying = trying || n.State == StateTrying
		}
		if len(acts) == 0 && !trying {
			return 0
		}
		// Perform every pending action (and those they lead to) before time passes.
		for _, a := range acts {
			// The power cycle: the node boots what the machine says.
			d, _ := m.Boot(a.Node)
			fmt.Fprintf(boots, "%s %s %v %d\n", a.Node, d.Image.Ref, d.Trial, d.Attempt)
			var err error
			switch {
			case a.Node == "pi-good":
				_, err = m.Report(ctx, a.Node, Report{Image: d.Image.Digest, Healthy: true})
			case a.Node == "pi-bad" && d.Trial:
				_, err = m.Report(ctx, a.Node, Report{Image: d.Image.Digest, Reason: "health check failed"})
			}
			if err != nil {
				return fail(err)
			}
			if err := m.Ack(ctx, a); err != nil {
				return fail(err)
			}
		}
		if len(acts) > 0 {
			continue
		}
		m.now = func() time.Time { return now().Add(scenarioTimeout) } // silence lasts past the deadline
		_, err := m.Tick(ctx)
		m.now = now
		if err != nil {
			return fail(err)
		}
	}
	return fail(fmt.Errorf("scenario did not settle in 100 rounds"))
}

// runChild runs the scenario in a child process; it reports whether the
// child was killed (rather than finishing).
func runChild(t *testing.T, db, bootlog string, killAt int) bool {
	t.Helper()
	_, killed := testutil.Reexec(t, childDB+"="+db, childBoots+"="+bootlog, fmt.Sprintf("%s=%d", childKillAt, killAt))
	return killed
}

// finalState reads the node records the scenario left.
func finalState(t *testing.T, db string) []Node {
	t.Helper()
	b, err := store.OpenBolt(db, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m, err := Open(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return m.Nodes()
}

// TestKillEveryTransition kills the scenario with SIGKILL at every crash
// point of every transition (before and after each journal write), resumes
// it in a new process, and checks it ends exactly where an uninterrupted run
// ends, and that no node ever booted an attempt it was not allowed.
func TestKillEveryTransition(t *testing.T) {
	dir := t.TempDir()
	golden := filepath.Join(dir, "golden.db")
	if runChild(t, golden, filepath.Join(dir, "golden.boots"), 0) {
		t.Fatal("the uninterrupted run was killed")
	}
	want := finalState(t, golden)
	wantBoots, _ := os.ReadFile(filepath.Join(dir, "golden.boots"))
	ignore := cmpopts.IgnoreFields(Node{}, "Seq", "Updated")
	kills := 0
	for k := 1; k < 500; k++ {
		db := filepath.Join(dir, fmt.Sprintf("k%03d.db", k))
		bootlog := db + ".boots"
		if !runChild(t, db, bootlog, k) {
			break // the scenario finished before crash point k: every point was hit
		}
		kills++
		if runChild(t, db, bootlog, 0) {
			t.Fatalf("kill at %d: the resumed run was killed", k)
		}
		if d := cmp.Diff(want, finalState(t, db), ignore); d != "" {
			t.Fatalf("kill at crash point %d: end state differs from the uninterrupted run (-want +got):\n%s", k, d)
		}
		boots, _ := os.ReadFile(bootlog)
		for _, line := range strings.Split(strings.TrimSpace(string(boots)), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && (f[3] > "2" || f[0] == "pi-good" && f[2] == "true" && f[3] != "1") {
				t.Fatalf("kill at %d: boot %q: beyond the policy's 2 attempts, or a healthy node tried twice\nboots:\n%s", k, line, boots)
			}
		}
		if len(boots) < len(wantBoots) {
			t.Fatalf("kill at %d: %d bytes of boots, the uninterrupted run had %d: an action was lost", k, len(boots), len(wantBoots))
		}
	}
	if kills < 10 {
		t.Fatalf("only %d crash points were reached", kills)
	}
	t.Logf("killed and resumed at each of %d crash points; golden end state: %d nodes, boots:\n%s", kills, len(want), wantBoots)
}
