package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/ab"
	"github.com/racklet/racklet-boot/store"
)

// KeyPrefix starts the journal key of every rollout record ("rollout/<group>").
const KeyPrefix = "rollout/"

// ErrUnknownGroup is returned for a group the controller was not given.
var ErrUnknownGroup = errors.New("no such group")

// Controller advances the rollouts of every group. It is safe for concurrent use.
type Controller struct {
	m   *ab.Machine
	j   ab.Journal
	now func() time.Time
	log *slog.Logger

	mu       sync.Mutex
	groups   map[string]Group
	rollouts map[string]*Rollout
}

// Option configures New.
type Option func(*Controller)

// WithClock sets the time source (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *Controller) { c.now = now } }

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Controller) { c.log = l } }

// New loads the rollout records from j; m must use the same journal.
func New(ctx context.Context, m *ab.Machine, j ab.Journal, opts ...Option) (*Controller, error) {
	c := &Controller{m: m, j: j, now: time.Now, log: slog.New(slog.DiscardHandler), groups: map[string]Group{}, rollouts: map[string]*Rollout{}}
	for _, o := range opts {
		o(c)
	}
	recs, err := j.Records(ctx, KeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("load rollouts: %w", err)
	}
	for _, rec := range recs {
		var r Rollout
		if err := json.Unmarshal(rec.Data, &r); err != nil || r.Seq != rec.Seq {
			return nil, fmt.Errorf("load rollouts: record %s is corrupt (%v)", rec.Key, err)
		}
		c.rollouts[r.Group] = &r
	}
	return c, nil
}

// record encodes the next version of r for the journal.
func record(r *Rollout) (*Rollout, store.Record, error) {
	next := *r
	next.Seq++
	next.Failed = slices.Clone(r.Failed)
	rec, err := ab.Record(KeyPrefix+next.Group, next.Seq, &next)
	return &next, rec, err
}

// save journals a changed rollout record on its own.
func (c *Controller) save(ctx context.Context, r *Rollout) error {
	next, rec, err := record(r)
	if err != nil {
		return err
	}
	if err := c.j.PutRecords(ctx, rec); err != nil {
		return fmt.Errorf("journal rollout of group %s: %w", r.Group, err)
	}
	c.rollouts[r.Group] = next
	return nil
}

// Apply takes the groups of a (re)loaded config. A group seen for the first
// time runs its image as committed (no rollout); a changed image starts a
// rollout; the previous image while a rollout is under way undoes it. Only
// a change of the configured image acts: applying the same config again
// (every reload) changes nothing, and an operator's Undo holds while the
// config still names the undone image.
func (c *Controller) Apply(ctx context.Context, groups []Group) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ensure := map[string]ab.Image{}
	for _, g := range groups {
		r := c.rollouts[g.Name]
		base := g.Image
		if r != nil && r.Phase != PhaseDone {
			base = r.From
		} else if r != nil {
			base = r.To
		}
		for _, n := range g.Members {
			ensure[n] = base
		}
	}
	if err := c.m.Ensure(ctx, ensure); err != nil {
		return err
	}
	c.groups = map[string]Group{}
	for _, g := range groups {
		c.groups[g.Name] = g
		r := c.rollouts[g.Name]
		var next Rollout
		switch {
		case r == nil:
			next = Rollout{Group: g.Name, From: g.Image, To: g.Image, Phase: PhaseDone, Policy: g.Policy}
		case g.Image.Same(r.configured()):
			// the config names what it named: only the policy may change
			if r.Policy == g.Policy && !r.Config.IsZero() {
				continue
			}
			next = *r
			next.Policy = g.Policy
		case g.Image.Same(r.From) && r.Phase != PhaseDone:
			next = *r
			next.Phase, next.Paused, next.Reason, next.Policy = PhaseUndoing, false, "config edited back to "+r.From.String(), g.Policy
			next.SettledAt = time.Time{}
		case g.Image.Same(r.To):
			// the config names the image the group is moving to (or, after
			// an operator's undo, runs again): nothing to start
			next = *r
			next.Policy = g.Policy
		default:
			from := r.To
			if r.Phase != PhaseDone {
				from = r.From
			}
			next = Rollout{Group: g.Name, Seq: r.Seq, From: from, To: g.Image, Phase: PhaseRunning, Policy: g.Policy}
			c.log.Info("rollout started", "group", g.Name, "from", from.String(), "to", g.Image.String(), "members", len(g.Members))
		}
		if r != nil {
			next.Seq = r.Seq
		}
		next.Config = g.Image
		if err := c.save(ctx, &next); err != nil {
			return err
		}
	}
	return nil
}

// configured is the image the config named at the last Apply (records
// written before Config existed: the target).
func (r *Rollout) configured() ab.Image {
	if r.Config.IsZero() {
		return r.To
	}
	return r.Config
}

// Step advances every rollout once: it acts on failed members, marks
// settled batches, and assigns the next batch where the previous one has
// settled and its pause has passed. It returns the power cycles to perform
// (then acknowledge with ab.Machine.Ack).
func (c *Controller) Step(ctx context.Context) ([]ab.Action, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := make([]string, 0, len(c.groups))
	for n := range c.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	var acts []ab.Action
	var errs []error
	for _, name := range names {
		a, err := c.step(ctx, c.groups[name])
		acts = append(acts, a...)
		if err != nil {
			errs = append(errs, fmt.Errorf("rollout of group %s: %w", name, err))
		}
	}
	return acts, errors.Join(errs...)
}

// view is a group's members as the A/B machine has them now.
type view struct {
	trying, atTarget, pending []string // members out of service; committed to the target; still to be assigned
	failed                    []string // members whose trial of the target was rolled back
	cancel                    []string // members trying something else than the target (an undo withdraws them)
}

func (c *Controller) look(g Group, r *Rollout) view {
	var v view
	t := r.target()
	for _, name := range g.Members {
		n, ok := c.m.Node(name)
		switch {
		case !ok:
		case !n.Returning.IsZero():
			v.trying = append(v.trying, name) // rebooting into its committed image: out of service
		case n.State == ab.StateTrying && n.Trial.Same(t):
			v.trying = append(v.trying, name)
		case n.State == ab.StateTrying:
			v.cancel = append(v.cancel, name)
		case n.Committed.Same(t):
			v.atTarget = append(v.atTarget, name)
		case n.State == ab.StateRolledBack && n.Trial.Same(t):
			v.failed = append(v.failed, name)
		default:
			v.pending = append(v.pending, name)
		}
	}
	return v
}

// step advances one group's rollout.
func (c *Controller) step(ctx context.Context, g Group) ([]ab.Action, error) {
	r := c.rollouts[g.Name]
	if r == nil || r.Phase == PhaseDone {
		return nil, nil
	}
	now := c.now().UTC()
	v := c.look(g, r)
	next := *r
	next.Failed = slices.Clone(r.Failed)
	changed := false
	// Members that failed the new image since the last step.
	var fresh []string
	for _, n := range v.failed {
		if !slices.Contains(next.Failed, n) {
			fresh = append(fresh, n)
		}
	}
	if len(fresh) > 0 {
		next.Failed = append(next.Failed, fresh...)
		nd, _ := c.m.Node(fresh[0])
		why := fmt.Sprintf("node %s rolled back: %s", fresh[0], nd.Reason)
		if len(fresh) > 1 {
			why = fmt.Sprintf("%d nodes rolled back, first %s", len(fresh), why)
		}
		changed = true
		switch {
		case next.Phase != PhaseRunning:
			// failures while undoing leave the node on its committed image
		case next.Policy.OnFailure == "rollback":
			next.Phase, next.Reason, next.SettledAt = PhaseUndoing, why+"; rolling the group back", time.Time{}
			c.log.Warn("rollout rolling back", "group", g.Name, "reason", why)
		default:
			next.Phase, next.Reason = PhaseHalted, why
			c.log.Warn("rollout halted", "group", g.Name, "reason", why)
		}
		if next.Phase == PhaseUndoing {
			v = c.look(g, &next)
		}
	}
	t := next.target()
	var as []ab.Assignment
	p := ab.Policy{Attempts: next.Policy.Attempts, HealthTimeout: next.Policy.HealthTimeout}
	if next.Phase == PhaseUndoing {
		for _, n := range v.cancel { // withdraw trials of the new image at once
			as = append(as, ab.Assignment{Node: n, Image: t, Policy: p})
		}
	}
	inFlight := len(v.trying)
	switch {
	case next.Phase == PhaseHalted || next.Paused:
	case inFlight > 0 || len(v.cancel) > 0:
		// the batch has not settled
	case len(v.pending) == 0:
		if next.Phase == PhaseUndoing {
			next.To = next.From
		}
		next.Phase, changed = PhaseDone, true
		next.Reason = strings.TrimPrefix(next.Reason+"; ", "; ") + fmt.Sprintf("done: %d of %d members run %s", len(v.atTarget), len(g.Members), t)
		c.log.Info("rollout done", "group", g.Name, "image", t.String(), "failed", len(v.failed))
	case next.Batch > 0 && next.SettledAt.Before(next.BatchAt):
		next.SettledAt, changed = now, true // the batch just settled: the pause starts
		if next.Policy.Pause > 0 {
			break
		}
		fallthrough
	case !now.Before(next.SettledAt.Add(next.Policy.Pause)) || next.Batch == 0:
		k := min(next.Policy.MaxUnavailable-inFlight, len(v.pending))
		for _, n := range v.pending[:max(k, 0)] {
			as = append(as, ab.Assignment{Node: n, Image: t, Policy: p})
		}
		next.Batch++
		next.BatchAt, changed = now, true
		c.log.Info("rollout batch", "group", g.Name, "batch", next.Batch, "nodes", k, "image", t.String())
	}
	if !changed && len(as) == 0 {
		return nil, nil
	}
	saved, rec, err := record(&next)
	if err != nil {
		return nil, err
	}
	acts, err := c.m.Assign(ctx, as, rec)
	if err != nil {
		return nil, err
	}
	c.rollouts[g.Name] = saved
	return acts, nil
}
