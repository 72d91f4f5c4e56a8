package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/ab"
	"github.com/racklet/racklet-boot/ab/rollout"
	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/internal/ociref"
	"github.com/racklet/racklet-boot/store"
)

// A/B timing: how often the loop ends silent attempts and steps rollouts,
// how long a power cycle that failed waits before it is tried again, and
// how many power cycles run at once.
const (
	abTick       = time.Second
	abRetry      = 30 * time.Second
	abParallel   = 16
	abCycleLimit = 30 * time.Second
)

// abWiring is the server's side of package ab: the slot machine and the
// rollout controller on the state database, the images of the config
// resolved to digests, and the loop that ends silent attempts, steps
// rollouts and power-cycles nodes. Every slot decision is ab's; this only
// feeds it and carries out what it asks.
type abWiring struct {
	s   *Server
	m   *ab.Machine
	c   *rollout.Controller
	log *slog.Logger

	kick chan struct{} // a transition asked for an action: run the loop now

	// Metrics: the loop's own CPU (its thread's, locked while it runs)
	// and the power cycles it performed, by result.
	cpu    prometheus.Counter
	cycles *prometheus.CounterVec

	mu     sync.Mutex
	roots  map[string]string       // manifest digest -> root.squashfs digest
	failed map[ab.Action]time.Time // power cycles that failed, by when
	seen   int64                   // ab transitions already put in timelines
	told   map[string]string       // per node, the timeline line last written
}

// openAB opens the A/B state in the server's state database and registers
// its metrics with reg.
func (s *Server) openAB(ctx context.Context, reg prometheus.Registerer) error {
	log := s.component("ab")
	m, err := ab.Open(ctx, s.state, ab.WithLogger(log))
	if err != nil {
		return err
	}
	c, err := rollout.New(ctx, m, s.state, rollout.WithLogger(s.component("rollout")))
	if err != nil {
		return err
	}
	s.ab = &abWiring{s: s, m: m, c: c, log: log, kick: make(chan struct{}, 1),
		roots: map[string]string{}, failed: map[ab.Action]time.Time{}, told: map[string]string{},
		cpu: prometheus.NewCounter(prometheus.CounterOpts{Name: "racklet_ab_controller_cpu_seconds_total",
			Help: "CPU time of the A/B loop (ending silent attempts, stepping rollouts, acknowledging power cycles)."}),
		cycles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "racklet_ab_power_cycles_total",
			Help: "Power cycles A/B asked for, by result (ok, failed: retried later, skipped: not possible)."}, []string{"result"})}
	for _, n := range m.Nodes() {
		s.ab.told[n.Name] = "ab." + string(n.State) + " " + abDetail(n)
	}
	for _, c := range []prometheus.Collector{s.ab.cpu, s.ab.cycles,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "racklet_ab_transitions_total",
			Help: "A/B node transitions journaled (assign, attempt, commit, roll back, acknowledge)."},
			func() float64 { return float64(m.Transitions()) })} {
		if reg != nil {
			_ = reg.Register(c) // a registry shared by two servers keeps the first's
		}
	}
	return nil
}

// BootImage implements resolve.Slots: the image ab says node boots now,
// pinned to its digest, and its slot.
func (w *abWiring) BootImage(node string) (string, string, bool) {
	d, err := w.m.Boot(node)
	if err != nil {
		return "", "", false
	}
	ref, err := ociref.Pin(d.Image.Ref, d.Image.Digest)
	if err != nil {
		return "", "", false
	}
	return ref, d.Slot.String(), true
}

// Decision implements nodeapi.AB: the decision for a node whose config
// boots an image.
func (w *abWiring) Decision(node string) (bootparams.SlotBoot, bool) {
	if n, ok := w.s.inv.Load().ByName(node); !ok || n.Boot.Image == "" {
		return bootparams.SlotBoot{}, false
	}
	d, err := w.m.Boot(node)
	if err != nil {
		return bootparams.SlotBoot{}, false
	}
	return bootparams.SlotBoot{Image: d.Image.Digest, Slot: d.Slot.String(), Trial: d.Trial, Attempt: d.Attempt, Allowed: d.Allowed, Rearm: d.Rearm}, true
}

// Report implements nodeapi.AB: a healthy or failed report decides the
// node's trial; a report carrying only the HAT's state is its witness.
func (w *abWiring) Report(ctx context.Context, rep bootparams.Report) error {
	n, ok := w.m.Node(rep.Node)
	if !ok {
		return nil
	}
	hat := hatState(rep.HAT)
	var err error
	switch rep.Stage {
	case bootparams.StageHealthy, bootparams.StageFailed:
		_, err = w.m.Report(ctx, rep.Node, ab.Report{Image: w.imageOf(ctx, n, rep.Image), Healthy: rep.Stage == bootparams.StageHealthy && rep.OK,
			Reason: rep.Reason, HAT: hat})
	default:
		if hat != nil {
			_, err = w.m.Witness(ctx, rep.Node, ab.WitnessOf(*hat))
		}
	}
	w.nudge()
	return err
}

// hatState converts the agent's reading of the HAT.
func hatState(h *bootparams.HATState) *hatlink.BootState {
	if h == nil {
		return nil
	}
	slot := func(s string) byte {
		if s == "b" {
			return hatlink.SlotB
		}
		return hatlink.SlotA
	}
	return &hatlink.BootState{Committed: slot(h.Committed), Limit: byte(h.Limit), Attempts: [2]byte{byte(h.Attempts[0]), byte(h.Attempts[1])},
		Allowed: h.Allowed, Counter: h.Counter}
}

// imageOf names the image a report is about by its manifest digest: the
// agent reports the digest of the root it booted (racklet.root).
func (w *abWiring) imageOf(ctx context.Context, n ab.Node, reported string) string {
	for _, img := range []ab.Image{n.Trial, n.Committed} {
		if img.IsZero() {
			continue
		}
		if reported == img.Digest {
			return img.Digest
		}
		if root, err := w.rootOf(ctx, img); err == nil && root == reported {
			return img.Digest
		}
	}
	return reported
}

// rootOf returns the root.squashfs digest of an image, from what the
// server resolved, else from the image store.
func (w *abWiring) rootOf(ctx context.Context, img ab.Image) (string, error) {
	w.mu.Lock()
	root, ok := w.roots[img.Digest]
	w.mu.Unlock()
	if ok {
		return root, nil
	}
	ref, err := ociref.Pin(img.Ref, img.Digest)
	if err != nil {
		return "", err
	}
	got, err := w.s.booter.Boot(ctx, ref)
	if err != nil {
		return "", err
	}
	w.remember(got.Digest.String(), got.Manifest.Root.Digest)
	return got.Manifest.Root.Digest, nil
}

func (w *abWiring) remember(digest, root string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.roots[digest] = root
}

// resolve verifies a configured reference (imagestore, through the
// booter) and names it for ab.
func (w *abWiring) resolve(ctx context.Context, ref string) (ab.Image, error) {
	img, err := w.s.booter.Boot(ctx, ref)
	if err != nil {
		return ab.Image{}, err
	}
	w.remember(img.Digest.String(), img.Manifest.Root.Digest)
	return ab.Image{Ref: ref, Digest: img.Digest.String()}, nil
}

// sync hands the config to ab: every group to the rollout controller
// (a changed image starts a rollout, the previous one undoes it), and every
// other boot.image node its image at once (no rollout bounds it). Nodes
// seen first are committed to their image. A reference that cannot be
// resolved now leaves its nodes as they are until the next sync.
func (w *abWiring) sync(ctx context.Context) error {
	cfg := w.s.inv.Load().Config()
	images := map[string]ab.Image{}
	var errs []error
	resolve := func(ref string) (ab.Image, bool) {
		if img, ok := images[ref]; ok {
			return img, true
		}
		img, err := w.resolve(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			return ab.Image{}, false
		}
		images[ref] = img
		return img, true
	}
	var groups []rollout.Group
	inGroup := map[string]bool{}
	for _, g := range cfg.Groups {
		for _, m := range g.Members {
			inGroup[m] = true
		}
		if img, ok := resolve(g.Image); ok {
			groups = append(groups, rollout.FromRack(g, img))
		}
	}
	if err := w.c.Apply(ctx, groups); err != nil {
		errs = append(errs, fmt.Errorf("apply the rack's groups to their rollouts: %w", err))
	}
	ensure := map[string]ab.Image{}
	var as []ab.Assignment
	for _, n := range cfg.Nodes {
		if inGroup[n.Name] || n.Boot.Image == "" {
			continue
		}
		img, ok := resolve(n.Boot.Image)
		if !ok {
			continue
		}
		if _, known := w.m.Node(n.Name); !known {
			ensure[n.Name] = img
			continue
		}
		as = append(as, ab.Assignment{Node: n.Name, Image: img})
	}
	if err := w.m.Ensure(ctx, ensure); err != nil {
		errs = append(errs, err)
	}
	if _, err := w.m.Assign(ctx, as); err != nil {
		errs = append(errs, fmt.Errorf("assign the nodes' images: %w", err))
	}
	w.nudge()
	return errors.Join(errs...)
}

// images lists the images ab holds for any node (committed and trial),
// pinned: the cache keeps them, so a rollback never waits for a registry.
func (w *abWiring) images() []string {
	seen := map[string]bool{}
	var refs []string
	for _, n := range w.m.Nodes() {
		for _, img := range []ab.Image{n.Committed, n.Trial} {
			if img.IsZero() || seen[img.Digest] {
				continue
			}
			seen[img.Digest] = true
			if ref, err := ociref.Pin(img.Ref, img.Digest); err == nil {
				refs = append(refs, ref)
			}
		}
	}
	return refs
}

func (w *abWiring) nudge() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run ends silent attempts, steps the rollouts and performs the power
// cycles ab asks for, every abTick and whenever a transition asks for one,
// until ctx ends.
func (w *abWiring) run(ctx context.Context) {
	// One thread of its own, so its CPU can be read (RUSAGE_THREAD).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t := time.NewTicker(abTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		before := threadCPU()
		w.pass(ctx)
		w.cpu.Add((threadCPU() - before).Seconds())
	}
}

// threadCPU is the calling thread's CPU time so far.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pass is one round of the loop.
func (w *abWiring) pass(ctx context.Context) {
	if _, err := w.m.Tick(ctx); err != nil && ctx.Err() == nil {
		w.log.Error("end silent a/b attempts", "err", err)
	}
	if _, err := w.c.Step(ctx); err != nil && ctx.Err() == nil {
		w.log.Error("step the rollouts", "err", err)
	}
	w.perform(ctx)
	if w.timeline(ctx) {
		w.s.hub.publish(rolloutTopic)
	}
}

// perform carries out the pending power cycles (those journaled and not
// acknowledged, so a restart re-issues what a kill -9 interrupted) and
// acknowledges the ones done. A cycle that failed is tried again after
// abRetry; one that cannot be done (the node is off, or unknown to the
// BMC) is acknowledged with a warning: the attempt's deadline then ends it.
func (w *abWiring) perform(ctx context.Context) {
	now := time.Now()
	var todo []ab.Action
	w.mu.Lock()
	for _, a := range w.m.Pending() {
		if at, ok := w.failed[a]; !ok || now.Sub(at) >= abRetry {
			todo = append(todo, a)
		}
	}
	w.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	done := make([]bool, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(abParallel)
	for i, a := range todo {
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(gctx, abCycleLimit)
			defer cancel()
			why := "a/b"
			if n, ok := w.m.Node(a.Node); ok {
				why = abWhy(n)
			}
			err := w.s.powerCycle(cctx, a.Node, why)
			switch {
			case err == nil:
				done[i] = true
				w.cycles.WithLabelValues("ok").Inc()
			case errors.Is(err, bmc.ErrNodeOff), errors.Is(err, bmc.ErrUnknownNode):
				w.log.Warn("a/b power cycle not possible; the attempt's deadline ends it", "node", a.Node, "err", err)
				done[i] = true
				w.cycles.WithLabelValues("skipped").Inc()
			default:
				w.cycles.WithLabelValues("failed").Inc()
				w.log.Warn("a/b power cycle failed; retrying later", "node", a.Node, "err", err, "retry", abRetry)
				w.mu.Lock()
				w.failed[a] = now
				w.mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	var acks []ab.Action
	w.mu.Lock()
	for i, a := range todo {
		if done[i] {
			acks = append(acks, a)
			delete(w.failed, a)
		}
	}
	w.mu.Unlock()
	if err := w.m.Ack(ctx, acks...); err != nil && ctx.Err() == nil {
		w.log.Error("acknowledge a/b power cycles", "err", err)
	}
}

// abWhy says why ab asked for a node's power cycle, for its timeline.
func abWhy(n ab.Node) string {
	switch {
	case n.State == ab.StateTrying:
		return fmt.Sprintf("a/b: trial of %s, attempt %d of %d", n.Trial, n.Attempt, n.Allowed)
	case n.State == ab.StateRolledBack:
		return "a/b: rolled back to " + n.Committed.String()
	}
	return "a/b: back to " + n.Committed.String()
}

// timeline puts each node's A/B transitions since the last call in its
// timeline (ab.trying, ab.committed, ab.rolled-back; the event tells the
// dashboard) and reports whether there were any.
func (w *abWiring) timeline(ctx context.Context) bool {
	n := w.m.Transitions()
	w.mu.Lock()
	if n == w.seen {
		w.mu.Unlock()
		return false
	}
	w.seen = n
	w.mu.Unlock()
	for _, rec := range w.m.Nodes() {
		ev := store.Event{Time: rec.Updated, Node: rec.Name, Type: "ab." + string(rec.State), Detail: abDetail(rec)}
		line := ev.Type + " " + ev.Detail
		w.mu.Lock()
		same := w.told[rec.Name] == line
		w.told[rec.Name] = line
		w.mu.Unlock()
		if same {
			continue
		}
		if err := w.s.events.AddEvent(ctx, ev); err != nil && ctx.Err() == nil {
			w.log.Warn("record an a/b transition", "node", rec.Name, "err", err)
		}
	}
	return true
}

// abDetail is a node's A/B record as one timeline line.
func abDetail(n ab.Node) string {
	s := fmt.Sprintf("slot %s: %s", n.CommittedSlot, n.Committed)
	if n.State == ab.StateTrying {
		s = fmt.Sprintf("slot %s: trial of %s, attempt %d of %d", n.TrialSlot(), n.Trial, n.Attempt, n.Allowed)
	}
	if n.Reason != "" {
		s += "; " + n.Reason
	}
	if n.Flagged {
		s += " (flagged)"
	}
	return s
}

// powerCycle power-cycles a node for ab: Options.PowerCycle, else through
// its HAT (the BMC; QMP system_reset under QEMU).
func (s *Server) powerCycle(ctx context.Context, node, why string) error {
	if s.opts.PowerCycle != nil {
		return s.opts.PowerCycle(ctx, node)
	}
	_, err := s.bmc.Power(ctx, node, "cycle", why)
	return err
}
