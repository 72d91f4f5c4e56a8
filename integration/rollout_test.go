package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/pisim"
)

// TestRolloutHundredNodes: racklet-boot serve (the binary, in its own
// namespace) runs a rack of 100 simulated nodes: each a Pi 4 bootloader
// (pisim, DHCP and TFTP on its own macvlan), an agent simulator reporting
// from the Pi's leased address, and a HAT simulator connected to the
// server's BMC port that power-cycles the node when racklet-boot asks. The
// group takes v2 in batches of 10; v2 fails its health check on pi-015 (in
// the second batch): the rollout halts with 19 nodes on v2, pi-015 rolled
// back after 2 attempts (its HAT counted them) and flagged, no node of a
// later batch tried v2, never more than 10 down. Resumed, the server is
// killed with SIGKILL mid-batch and started again: the rollout goes on with
// no node assigned twice. `racklet-boot rollout undo` returns all 100 to v1.
func TestRolloutHundredNodes(t *testing.T) {
	need(t, "busybox", "ss", "ip")
	const n, bad = 100, 15
	ctx := t.Context()
	dir := t.TempDir()

	// Two signed images in an OCI layout: v1 and v2 differ in a root file.
	ri := func(args ...string) {
		t.Helper()
		runImageEnv(t, []string{"RACKLET_KEY_PASSWORD=racklet-test", "SOURCE_DATE_EPOCH=1700000000"}, args...)
	}
	base, err := imagetest.WriteLayout(filepath.Join(dir, "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake, err := imagetest.FakeAgent(dir, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	key, lay := filepath.Join(dir, "cosign"), filepath.Join(dir, "layout")
	ri("keygen", "--prefix", key)
	roots := map[string]string{}
	for _, tag := range []string{"v1", "v2"} {
		over := filepath.Join(dir, "overlay-"+tag)
		writeFile(t, over, "etc/racklet-version", tag+"\n")
		out := filepath.Join(dir, tag)
		ri("build", "--base", base, "--agent", fake, "--overlay", over, "--dir", out)
		ri("push", out, "oci-layout:"+lay+":"+tag)
		ri("sign", "oci-layout:"+lay+":"+tag, "--key", key+".key")
		m, err := image.ReadManifest(out)
		if err != nil {
			t.Fatal(err)
		}
		roots[tag] = m.Root.Digest
	}

	sw := newSwitch(t)
	srvNS, rackNS := newHost(t, "ros"), newHost(t, "ror")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.84.0.1/16")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, rackNS, "eth0", mustPrefix("10.84.255.254/16")); err != nil {
		t.Fatal(err)
	}
	rackThread, err := rackNS.Thread()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rackThread.Close)

	r := &simRack{t: t, ns: rackNS, thread: rackThread, server: "http://10.84.0.1", bmc: "10.84.0.1:7070",
		boots: map[int][]agentsim.Boot{}, down: map[int]bool{}}
	r.bad = func(i int, root string) bool { return i == bad && root == roots["v2"] }
	pis := pisim.NewPis(n, 4, 84)
	if err := os.MkdirAll(filepath.Join(dir, "hats"), 0o755); err != nil {
		t.Fatal(err)
	}
	var nodes strings.Builder
	for i, p := range pis {
		p.FileTimeout, p.DHCPTimeout = 90*time.Second, 90*time.Second
		dev, err := hatsim.Open(filepath.Join(dir, "hats", p.Name()+".json"), hatsim.Options{Serial: p.Name()})
		if err != nil {
			t.Fatal(err)
		}
		r.nodes = append(r.nodes, &simNode{rack: r, i: i, pi: p, hat: dev})
		fmt.Fprintf(&nodes, "  - {name: pi-%03d, kind: rpi4, serial: %q, hatKey: %q, labels: {role: worker}}\n",
			i, p.Name(), hatlink.EncodeKey(dev.Identity().SignKey))
	}
	config := func(tag string) string {
		return rackConfig("eth0", "10.84.0.1", filepath.Join(dir, "data"), `mode: full
subnet: 10.84.0.0/16
pool: {start: 10.84.1.1, end: 10.84.1.250}
router: 10.84.0.1
leaseTime: 1h`, fmt.Sprintf(`trust:
  - repositories: ["oci-layout:%s"]
    keys: [{file: %s.pub}]
nodes:
%sgroups:
  - name: workers
    selector: {role: worker}
    image: "oci-layout:%s:%s"
    rollout: {maxUnavailable: 10, healthTimeout: 90s, attempts: 2, onFailure: halt}
`, lay, key, nodes.String(), lay, tag))
	}
	srv := startServer(t, srvNS, dir, config("v1"))
	waitListening(t, srvNS, srv.proc, 20*time.Second, "udp:67", "tcp:7070")
	for _, sn := range r.nodes {
		sn.start(ctx)
	}
	status := func() rollout.GroupStatus {
		t.Helper()
		out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), "rollout", "status", "-o", "json", "--server", "http://10.84.0.1", "--token-file", filepath.Join(dir, "data", "admin.token"))
		if err != nil {
			return rollout.GroupStatus{}
		}
		var st []rollout.GroupStatus
		if json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 {
			return rollout.GroupStatus{}
		}
		return st[0]
	}
	until := func(what string, limit time.Duration, ok func(rollout.GroupStatus) bool) rollout.GroupStatus {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			st := status()
			if ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out after %s waiting for %s; status %s %s: %d at target, %d trying, %d failed (%s)\nsimulation errors: %v",
					limit, what, st.Phase, st.To, st.AtTarget, st.Trying, st.Failed, st.Reason, r.errors())
			}
			time.Sleep(time.Second)
		}
	}
	settled := func(tag string, phase rollout.Phase) func(rollout.GroupStatus) bool {
		return func(st rollout.GroupStatus) bool {
			return st.Phase == phase && st.Trying == 0 && strings.HasSuffix(st.To, ":"+tag)
		}
	}
	until("the rack on v1", time.Minute, settled("v1", rollout.PhaseDone))
	connected := func() int {
		c := 0
		for _, sn := range r.nodes {
			if sn.connected() {
				c++
			}
		}
		return c
	}
	waitFor(t, 2*time.Minute, "100 HATs connected", func() bool { return connected() == n })

	// v2: halts after the second batch.
	start := time.Now()
	writeFile(t, dir, "rack.yaml", config("v2"))
	st := until("the v2 rollout to halt", 6*time.Minute, settled("v2", rollout.PhaseHalted))
	t.Logf("v2 halted after %s: %s", time.Since(start).Round(time.Second), st.Reason)
	if st.AtTarget != 19 || st.Failed != 1 {
		t.Errorf("halted with %d nodes on v2 and %d failed, want 19 and 1", st.AtTarget, st.Failed)
	}
	for _, ns := range st.Nodes {
		if ns.Node == fmt.Sprintf("pi-%03d", bad) && (ns.State != "rolled-back" || !ns.Flagged || ns.Attempt != 2) {
			t.Errorf("pi-%03d: %s flagged %v attempt %d, want rolled back after 2 attempts, flagged", bad, ns.State, ns.Flagged, ns.Attempt)
		}
	}
	if hs := r.nodes[bad].hatState(ctx); hs.Attempts[hatlink.SlotB] != 2 || hs.Committed != hatlink.SlotA {
		t.Errorf("pi-%03d's HAT: %+v, want 2 attempts of slot b counted, a committed", bad, hs)
	}
	for i := 20; i < n; i++ {
		if r.triedV2(i, roots["v2"]) {
			t.Errorf("pi-%03d (past the halted batch) tried v2", i)
		}
	}
	if most := r.mostDown(); most > 10 {
		t.Errorf("%d nodes were down at once, maxUnavailable is 10", most)
	}

	// Resume; kill -9 the server in the middle of a batch; start it again.
	rb := func(args ...string) string {
		t.Helper()
		out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), append(args, "--server", "http://10.84.0.1", "--token-file", filepath.Join(dir, "data", "admin.token"))...)
		if err != nil {
			t.Fatalf("racklet-boot %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	rb("rollout", "resume", "workers")
	until("a batch in flight past 40 nodes", 5*time.Minute, func(st rollout.GroupStatus) bool { return st.AtTarget >= 40 && st.Trying > 0 })
	committed := r.committedBefore(roots["v2"])
	srv.proc.Kill()
	killedAt := time.Now()
	t.Logf("killed racklet-boot (SIGKILL) with %d nodes committed to v2", len(committed))
	srv.restart(t)
	st = until("the v2 rollout done after the restart", 8*time.Minute, settled("v2", rollout.PhaseDone))
	if st.AtTarget != n-1 {
		t.Errorf("after the restart: %d on v2, want %d (all but pi-%03d)", st.AtTarget, n-1, bad)
	}
	for i := range committed {
		if r.trialAfter(i, killedAt) {
			t.Errorf("pi-%03d had committed v2 before the kill and was assigned a trial again after the restart", i)
		}
	}
	if most := r.mostDown(); most > 10 {
		t.Errorf("%d nodes were down at once across the restart, maxUnavailable is 10", most)
	}
	t.Logf("v2 done after %s (with the kill -9)", time.Since(start).Round(time.Second))

	// undo: everyone back to v1.
	undo := time.Now()
	out := rb("rollout", "undo", "workers")
	t.Logf("racklet-boot rollout undo workers:\n%s", firstLines(out, 3))
	until("the undo to finish", 8*time.Minute, settled("v1", rollout.PhaseDone))
	st = status()
	for _, ns := range st.Nodes {
		// pi-015 never left v1 and stays flagged for its failed trial of v2.
		want := "committed"
		if ns.Node == fmt.Sprintf("pi-%03d", bad) {
			want = "rolled-back"
		}
		if ns.State != ab.State(want) || ns.Committed != ns.Image || !strings.HasSuffix(ns.Ref, ":v1") {
			t.Errorf("%s after undo: %s on %s (%s), want %s on v1", ns.Node, ns.State, ns.Ref, ns.Image, want)
		}
	}
	if most := r.mostDown(); most > 10 {
		t.Errorf("%d nodes were down at once, maxUnavailable is 10", most)
	}
	t.Logf("undo done after %s; %d simulated boots in all", time.Since(undo).Round(time.Second), r.count())
	table := rb("rollout", "status")
	t.Logf("racklet-boot rollout status:\n%s", firstLines(table, 6))
	if errs := r.errors(); len(errs) > 0 {
		t.Errorf("%d simulated boots failed, first: %v", len(errs), errs[0])
	}
}

// firstLines returns the first k lines of s.
func firstLines(s string, k int) string {
	ls := strings.SplitN(s, "\n", k+1)
	return strings.Join(ls[:min(k, len(ls))], "\n")
}

// simRack is the simulated rack of TestRolloutHundredNodes.
type simRack struct {
	t      *testing.T
	ns     netlab.Namespace
	thread *netlab.Thread // dials from the rack LAN (the HATs' BMC links)
	server string         // racklet-boot's URL
	bmc    string         // its BMC listener
	nodes  []*simNode
	bad    func(i int, root string) bool

	mu    sync.Mutex
	boots map[int][]agentsim.Boot
	ended map[int][]time.Time // when each boot of boots ended
	errs  []error
	down  map[int]bool
	most  int
}

func (r *simRack) setDown(i int, down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if down {
		r.down[i] = true
		r.most = max(r.most, len(r.down))
	} else {
		delete(r.down, i)
	}
}

// mostDown returns the most nodes down at once since the last call.
func (r *simRack) mostDown() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.most
	r.most = len(r.down)
	return m
}

func (r *simRack) record(i int, b agentsim.Boot, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("pi-%03d: %w", i, err))
		return
	}
	if r.ended == nil {
		r.ended = map[int][]time.Time{}
	}
	r.boots[i] = append(r.boots[i], b)
	r.ended[i] = append(r.ended[i], time.Now())
}

func (r *simRack) errors() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func (r *simRack) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := 0
	for _, b := range r.boots {
		c += len(b)
	}
	return c
}

// triedV2 reports whether node i ever booted the v2 root.
func (r *simRack) triedV2(i int, root string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.boots[i] {
		if b.Root == root {
			return true
		}
	}
	return false
}

// committedBefore lists the nodes whose trial of root ended healthy.
func (r *simRack) committedBefore(root string) map[int]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[int]bool{}
	for i, bs := range r.boots {
		for _, b := range bs {
			if b.Root == root && b.Decision != nil && b.Decision.Trial && b.Outcome.Healthy {
				out[i] = true
			}
		}
	}
	return out
}

// trialAfter reports whether node i booted a trial that ended after t.
func (r *simRack) trialAfter(i int, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, b := range r.boots[i] {
		if r.ended[i][k].After(t) && b.Decision != nil && b.Decision.Trial {
			return true
		}
	}
	return false
}

// simNode is one simulated node: its Pi firmware, its HAT and its agent.
// The HAT powers it: a power cycle ends the boot under way and starts a
// new one (pisim, then agentsim), as cutting a real Pi's power does.
type simNode struct {
	rack *simRack
	i    int
	pi   *pisim.Pi
	hat  *hatsim.Device

	mu      sync.Mutex
	started bool // the first power on: the node was running v1 already
	cancel  context.CancelFunc
	done    chan struct{}
	linked  bool
}

// start attaches the HAT to the node and connects it to racklet-boot's
// BMC port (reconnecting whenever the link ends).
func (sn *simNode) start(ctx context.Context) {
	if err := sn.hat.Attach(ctx, sn); err != nil {
		sn.rack.t.Fatal(err)
	}
	go func() {
		for ctx.Err() == nil {
			var c net.Conn
			err := sn.rack.thread.Do(func() (err error) {
				c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, "tcp", sn.rack.bmc)
				return err
			})
			if err == nil {
				sn.setLinked(true)
				hatlink.Serve(ctx, c, sn.hat.BMC())
				c.Close()
				sn.setLinked(false)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
}

func (sn *simNode) setLinked(v bool) {
	sn.mu.Lock()
	sn.linked = v
	sn.mu.Unlock()
}

func (sn *simNode) connected() bool {
	sn.mu.Lock()
	defer sn.mu.Unlock()
	return sn.linked
}

// SetPower implements hatsim.Machine.
func (sn *simNode) SetPower(_ context.Context, on bool) error {
	sn.mu.Lock()
	first := !sn.started
	sn.started = true
	sn.mu.Unlock()
	switch {
	case on && first: // running v1 when the rack starts
	case on:
		sn.reboot()
	default:
		sn.stop()
	}
	return nil
}

// Reset implements hatsim.Machine. It returns at once: the HAT holds its
// lock while it power-cycles, and the boot under way may be talking to it.
func (sn *simNode) Reset(context.Context) error {
	sn.reboot()
	return nil
}

// stop cuts the node's power: the boot under way ends (in the background).
func (sn *simNode) stop() {
	sn.mu.Lock()
	cancel := sn.cancel
	sn.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// reboot ends the boot under way (in the background) and starts another.
func (sn *simNode) reboot() {
	sn.rack.setDown(sn.i, true)
	sn.mu.Lock()
	prevCancel, prevDone := sn.cancel, sn.done
	ctx, cancel := context.WithCancel(sn.rack.t.Context())
	done := make(chan struct{})
	sn.cancel, sn.done = cancel, done
	sn.mu.Unlock()
	go func() {
		defer close(done)
		if prevCancel != nil {
			prevCancel()
			<-prevDone
		}
		b, err := sn.boot(ctx)
		if ctx.Err() != nil {
			return // power-cycled again, or the test ended
		}
		sn.rack.record(sn.i, b, err)
	}()
}

// boot is one boot: the Pi firmware over DHCP and TFTP on a macvlan of its
// own, then the agent from the address it leased. A firmware boot that
// fails (racklet-boot killed mid-transfer) starts over, as a Pi whose boot
// order loops does, up to three times.
func (sn *simNode) boot(ctx context.Context) (agentsim.Boot, error) {
	var tr *keptLink
	var err error
	for try := range 3 {
		if tr != nil {
			tr.close()
			select {
			case <-ctx.Done():
				return agentsim.Boot{}, ctx.Err()
			case <-time.After(time.Duration(try) * 5 * time.Second):
			}
		}
		tr = &keptLink{ctx: ctx, inner: &pisim.MacvlanTransport{Parent: "eth0", NetNS: string(sn.rack.ns), NamePrefix: "rkr"}}
		var res *pisim.Result
		if res, err = sn.pi.BootOn(ctx, tr); err == nil && !res.KernelLoaded {
			err = fmt.Errorf("firmware: %s %s", res.Verdict, res.Error)
		}
		if err == nil {
			break
		}
	}
	defer tr.close()
	if err != nil {
		return agentsim.Boot{}, err
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			ta, err := net.ResolveTCPAddr("tcp4", addr)
			if err != nil {
				return nil, err
			}
			return tr.link.DialTCP(ctx, ta)
		}}}
	agent := &agentsim.Node{Server: sn.rack.server, HTTP: hc, Prefix: sn.pi.Name(), Tries: 60,
		HAT: func(ctx context.Context) (io.ReadWriteCloser, error) {
			a, b := net.Pipe()
			go hatlink.Serve(context.WithoutCancel(ctx), b, sn.hat)
			return a, nil
		}}
	return agent.Run(ctx, func(_ bootparams.WhoAmI, root string) agentsim.Outcome {
		if sn.rack.bad(sn.i, root) {
			return agentsim.Outcome{Reason: "health check: racklet-health.service failed"}
		}
		sn.rack.setDown(sn.i, false) // in service from its health check on
		return agentsim.Outcome{Healthy: true}
	})
}

// hatState reads the node's HAT over its Pi port.
func (sn *simNode) hatState(ctx context.Context) hatlink.BootState {
	a, b := net.Pipe()
	go hatlink.Serve(ctx, b, sn.hat)
	link := hatlink.NewLink(a)
	defer link.Close()
	c, err := hatlink.NewClient(ctx, link)
	if err != nil {
		sn.rack.t.Fatal(err)
	}
	st, err := c.BootState(ctx)
	if err != nil {
		sn.rack.t.Fatal(err)
	}
	return st
}

// keptLink is a pisim transport whose link outlives the firmware's boot:
// the agent speaks from the address the Pi leased, then close removes it.
// A power cut (ctx ends) closes it at once.
type keptLink struct {
	ctx   context.Context
	inner pisim.Transport
	link  pisim.Link
}

func (k *keptLink) Open(ctx context.Context, p *pisim.Pi) (pisim.Link, error) {
	l, err := k.inner.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	k.link = l
	return openLink{k.ctx, l}, nil
}

func (k *keptLink) close() {
	if k.link != nil {
		k.link.Close()
	}
}

// openLink ignores the firmware's Close, unless the power was cut.
type openLink struct {
	ctx context.Context
	pisim.Link
}

func (o openLink) Close() error {
	if o.ctx.Err() != nil {
		return o.Link.Close()
	}
	return nil
}

// runImageEnv runs racklet-image with extra environment.
func runImageEnv(t *testing.T, env []string, args ...string) {
	t.Helper()
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	runImage(t, args...)
}
