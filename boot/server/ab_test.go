package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/ab"
	"github.com/racklet/racklet-boot/ab/rollout"
	"github.com/racklet/racklet-boot/agent/agentsim"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image/imagetest/signed"
	"github.com/racklet/racklet-boot/internal/adminclient"
)

// nodeAddr is node i's static loopback address: 127.1.<i/250>.<i%250+1>.
func nodeAddr(i int) net.IP { return net.IPv4(127, 1, byte(i/250), byte(i%250+1)) }

// abRack is a rack config of n nodes in group "workers" on image tag,
// each with a static loopback address (nodeAddr) its agent reports from.
func abRack(dir string, im *signed.Images, n int, tag, rolloutPolicy string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: racklet.io/v1alpha1
kind: Rack
server: {address: 127.0.0.1, dataDir: %s}
dhcp: {mode: off, subnet: 127.0.0.0/8}
trust:
  - repositories: ["oci-layout:%s"]
    keys:
      - pem: |
`, filepath.Join(dir, "data"), im.Layout)
	for _, l := range strings.Split(strings.TrimSpace(string(im.PublicKey)), "\n") {
		b.WriteString("          " + l + "\n")
	}
	b.WriteString("nodes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {name: pi-%03d, kind: rpi4, serial: \"%08x\", address: %s, labels: {role: worker}}\n", i, 0x10000000+i, nodeAddr(i))
	}
	fmt.Fprintf(&b, `groups:
  - name: workers
    selector: {role: worker}
    image: %q
    rollout: %s
`, im.Ref(tag), rolloutPolicy)
	return b.String()
}

// simRack is n simulated nodes, each with a HAT (hatsim, its ports in
// process) and an agent (agentsim) reporting from its own loopback
// address; the server power-cycles them through Options.PowerCycle, which
// asks the node's HAT.
type simRack struct {
	t     testing.TB
	ctx   context.Context
	base  string // the server's URL
	hats  []*hatsim.Device
	nodes []*agentsim.Node
	// bad decides whether a node's boot of a root digest fails its health check.
	bad func(node int, root string) bool

	mu     sync.Mutex
	boots  map[int][]agentsim.Boot
	errs   []error
	down   map[int]bool
	most   int // most nodes down at once
	wg     sync.WaitGroup
	cycles int
}

func newSimRack(t testing.TB, dir string, n int) *simRack {
	r := &simRack{t: t, ctx: context.Background(), boots: map[int][]agentsim.Boot{}, down: map[int]bool{},
		bad: func(int, string) bool { return false }}
	for i := range n {
		dev, err := hatsim.Open(filepath.Join(dir, fmt.Sprintf("hat-%03d.json", i)), hatsim.Options{Serial: fmt.Sprintf("%08x", 0x10000000+i)})
		if err != nil {
			t.Fatal(err)
		}
		local := &net.TCPAddr{IP: nodeAddr(i)}
		tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).DialContext, MaxIdleConnsPerHost: 1}
		r.hats = append(r.hats, dev)
		r.nodes = append(r.nodes, &agentsim.Node{HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}, Prefix: fmt.Sprintf("%08x", 0x10000000+i),
			HAT: func(ctx context.Context) (io.ReadWriteCloser, error) {
				a, b := net.Pipe()
				go hatlink.Serve(context.WithoutCancel(ctx), b, dev)
				return a, nil
			}})
	}
	return r
}

// index is a node's number from its name.
func (r *simRack) index(node string) int {
	var i int
	fmt.Sscanf(node, "pi-%d", &i)
	return i
}

// powerCycle is Options.PowerCycle: the node's HAT power-cycles it (its
// boot counter moves on, as on hardware), and it boots again in the
// background.
func (r *simRack) powerCycle(ctx context.Context, node string) error {
	i := r.index(node)
	a, b := net.Pipe()
	go hatlink.Serve(context.WithoutCancel(ctx), b, r.hats[i].BMC())
	link := hatlink.NewLink(a)
	defer link.Close()
	c, err := hatlink.NewClient(ctx, link)
	if err != nil {
		return err
	}
	if _, err := c.PowerCycle(ctx); err != nil {
		return err
	}
	r.mu.Lock()
	r.cycles++
	r.down[i] = true
	r.most = max(r.most, len(r.down))
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.boot(i)
	}()
	return nil
}

// boot runs one simulated boot of node i.
func (r *simRack) boot(i int) {
	b, err := r.nodes[i].Run(r.ctx, func(_ bootparams.WhoAmI, root string) agentsim.Outcome {
		if r.bad(i, root) {
			return agentsim.Outcome{Reason: "health check: racklet-health.service failed"}
		}
		r.mu.Lock()
		delete(r.down, i) // in service from its health check on
		r.mu.Unlock()
		return agentsim.Outcome{Healthy: true}
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("pi-%03d: %w", i, err))
		return
	}
	r.boots[i] = append(r.boots[i], b)
}

// waitPhase polls the rollout status until the group moves to the image
// tagged to, in phase with no member trying, or fails after limit.
func waitPhase(t testing.TB, s *Server, to string, phase rollout.Phase, limit time.Duration) rollout.GroupStatus {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st := s.Rollouts()
		if len(st) == 1 && st[0].Phase == phase && st[0].Trying == 0 && strings.HasSuffix(st[0].To, ":"+to) {
			return st[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollout not %s within %s: %+v", phase, limit, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestABRolloutThroughServer: a real boot/server on loopback with six
// simulated nodes (HAT simulator, agent simulator). The group starts on v1
// (committed at once); the config names v2: nodes take it two at a time,
// each trial counted on its HAT and committed there after the healthy
// report; then v3, which fails its health check on pi-003: the rollout
// halts after that batch with pi-003 rolled back after 2 attempts (its HAT
// counted 2) and flagged, and the admin API's undo returns every node to
// v2. The resolver serves each node the image ab decided, and the status
// shows it.
func TestABRolloutThroughServer(t *testing.T) {
	dir := t.TempDir()
	im := signed.Layout(t, dir, "v1", "v2", "v3")
	policy := "{maxUnavailable: 2, healthTimeout: 10s, attempts: 2}"
	const n = 6
	sims := newSimRack(t, dir, n)
	t.Cleanup(func() {
		if t.Failed() {
			sims.mu.Lock()
			t.Logf("simulated boot errors: %v; %d power cycles", sims.errs, sims.cycles)
			for i, b := range sims.boots {
				t.Logf("pi-%03d booted %+v", i, b)
			}
			sims.mu.Unlock()
		}
	})
	s, err := New(parseConfig(t, dir, abRack(dir, im, n, "v1", policy)),
		Options{HTTPAddr: "127.0.0.1:0", TFTPAddr: "127.0.0.1:0", BMCAddr: "127.0.0.1:0", Neighbours: nobody{}, PowerCycle: sims.powerCycle})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s)
	base := "http://" + s.Addrs().HTTP
	for _, node := range sims.nodes {
		node.Server = base
	}
	root := map[string]string{}
	for tag, m := range im.Manifests {
		root[tag] = m.Root.Digest
	}
	sims.bad = func(i int, r string) bool { return i == 3 && r == root["v3"] }
	v1d, v2d := im.Digests["v1"], im.Digests["v2"]

	waitPhase(t, s, "v1", rollout.PhaseDone, 60*time.Second)
	for i := range n {
		if d, err := s.ab.m.Boot(fmt.Sprintf("pi-%03d", i)); err != nil || d.Image.Digest != v1d || d.Trial {
			t.Fatalf("pi-%03d at start: %+v, %v; want committed v1", i, d, err)
		}
	}

	reload := func(tag string) {
		t.Helper()
		if err := s.Reload(t.Context(), parseConfig(t, dir, abRack(dir, im, n, tag, policy))); err != nil {
			t.Fatal(err)
		}
	}
	reload("v2")
	st := waitPhase(t, s, "v2", rollout.PhaseDone, 2*time.Minute)
	if st.AtTarget != n || sims.most > 2 {
		t.Fatalf("v2 rollout: %d of %d at v2, at most %d down (maxUnavailable 2): %+v", st.AtTarget, n, sims.most, st)
	}
	for i := range n {
		boots := sims.boots[i]
		if len(boots) != 1 || boots[0].Root != root["v2"] || !boots[0].Decision.Trial || boots[0].Decision.Slot != "b" {
			t.Fatalf("pi-%03d's boots in the v2 rollout: %+v; want one trial of v2 in slot b", i, boots)
		}
		if st := hatBootState(t, sims.hats[i]); st.Committed != hatlink.SlotB || st.Attempts != [2]byte{} {
			t.Errorf("pi-%03d's HAT after committing v2: %+v, want slot b committed", i, st)
		}
	}

	sims.mu.Lock()
	sims.most, sims.boots = 0, map[int][]agentsim.Boot{}
	sims.mu.Unlock()
	reload("v3")
	st = waitPhase(t, s, "v3", rollout.PhaseHalted, 2*time.Minute)
	if st.AtTarget != 3 || st.Failed != 1 || sims.most > 2 {
		t.Errorf("v3 rollout halted with %d at v3 and %d failed, at most %d down; want 3, 1, at most 2: %s", st.AtTarget, st.Failed, sims.most, st.Reason)
	}
	bad, _ := s.ab.m.Node("pi-003")
	if bad.State != ab.StateRolledBack || !bad.Flagged || bad.Committed.Digest != v2d || bad.Attempt != 2 {
		t.Errorf("pi-003: %s, flagged %v, committed %s, attempt %d; want rolled back to v2 after 2 attempts, flagged", bad.State, bad.Flagged, bad.Committed, bad.Attempt)
	}
	if st := hatBootState(t, sims.hats[3]); st.Committed != hatlink.SlotB || st.Attempts[hatlink.SlotA] != 2 {
		t.Errorf("pi-003's HAT: %+v, want 2 attempts of slot a counted, b committed", st)
	}
	if got := len(sims.boots[3]); got != 3 || sims.boots[3][2].Root != root["v2"] {
		t.Errorf("pi-003 booted %d times (%+v), want two trials of v3 and the committed v2", got, sims.boots[3])
	}
	for i := 4; i < n; i++ {
		if len(sims.boots[i]) != 0 {
			t.Errorf("pi-%03d booted after the halt: %+v", i, sims.boots[i])
		}
	}
	c := NewAdminClient(adminclient.HTTP(base, s.AdminToken()))
	var table strings.Builder
	sts, err := c.Rollouts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := rollout.Write(&table, "table", sts); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "halted") || !strings.Contains(table.String(), "rolled-back!") {
		t.Errorf("status table does not show the halt and the flagged node:\n%s", table.String())
	}
	t.Logf("halted:\n%s", table.String())

	g, err := c.Rollout(t.Context(), "workers", "undo", "test")
	if err != nil || g.Phase != rollout.PhaseUndoing {
		t.Fatalf("undo: %+v, %v", g, err)
	}
	waitPhase(t, s, "v2", rollout.PhaseDone, 2*time.Minute)
	for i := range n {
		name := fmt.Sprintf("pi-%03d", i)
		if d, _ := s.ab.m.Boot(name); d.Image.Digest != v2d || d.Trial {
			t.Errorf("%s after undo boots %+v, want committed v2", name, d)
		}
	}
	// Another reload with v3 named (as after any config edit) starts nothing.
	reload("v3")
	time.Sleep(3 * abTick)
	if st := s.Rollouts()[0]; st.Phase != rollout.PhaseDone || !strings.HasSuffix(st.To, ":v2") {
		t.Errorf("after an undo, reloading the config restarted the rollout: %+v", st)
	}
	if _, err := c.Rollout(t.Context(), "nobody", "pause", "test"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("pause of an unknown group: %v, want 404", err)
	}
	sims.wg.Wait()
	if len(sims.errs) > 0 {
		t.Errorf("simulated boots failed: %v", sims.errs)
	}
}

// hatBootState reads a simulated HAT's A/B state over its Pi port.
func hatBootState(t testing.TB, dev *hatsim.Device) hatlink.BootState {
	t.Helper()
	a, b := net.Pipe()
	go hatlink.Serve(context.Background(), b, dev)
	c, err := hatlink.NewClient(context.Background(), hatlink.NewLink(a))
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.BootState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}
