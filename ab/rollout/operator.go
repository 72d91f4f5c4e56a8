package rollout

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Pause stops a group's rollout from starting batches; trials under way go on.
func (c *Controller) Pause(ctx context.Context, group string) error {
	return c.edit(ctx, group, "pause", func(r *Rollout) error {
		if r.Phase == PhaseDone {
			return fmt.Errorf("no rollout under way (it is done)")
		}
		r.Paused = true
		return nil
	})
}

// Resume lets a paused or halted rollout go on; members that already failed
// are left on their committed image and do not halt it again. After an undo
// (by an operator, or onFailure: rollback) while the config still names the
// undone image, Resume starts that rollout again.
func (c *Controller) Resume(ctx context.Context, group string) error {
	return c.edit(ctx, group, "resume", func(r *Rollout) error {
		if r.Phase == PhaseDone && !r.Config.IsZero() && !r.Config.Same(r.To) {
			*r = Rollout{Group: r.Group, Seq: r.Seq, From: r.To, To: r.Config, Config: r.Config, Phase: PhaseRunning, Policy: r.Policy,
				Reason: "started again by an operator"}
			return nil
		}
		if r.Phase == PhaseDone {
			return fmt.Errorf("no rollout under way (it is done)")
		}
		r.Paused = false
		if r.Phase == PhaseHalted {
			r.Phase, r.Reason = PhaseRunning, "resumed by an operator after: "+r.Reason
		}
		return nil
	})
}

// Undo returns the group to the image it ran before the rollout.
func (c *Controller) Undo(ctx context.Context, group string) error {
	return c.edit(ctx, group, "undo", func(r *Rollout) error {
		if r.From.Same(r.To) {
			return fmt.Errorf("nothing to undo: the group runs %s and ran it before", r.To)
		}
		r.Phase, r.Paused, r.Reason, r.SettledAt = PhaseUndoing, false, "undo asked by an operator", time.Time{}
		return nil
	})
}

// edit changes one rollout record under the lock and journals it.
func (c *Controller) edit(ctx context.Context, group, op string, fn func(*Rollout) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.rollouts[group]
	if !ok {
		return fmt.Errorf("%s rollout of group %s: %w", op, group, ErrUnknownGroup)
	}
	next := *r
	next.Failed = slices.Clone(r.Failed)
	if err := fn(&next); err != nil {
		return fmt.Errorf("%s rollout of group %s: %w", op, group, err)
	}
	c.log.Info("rollout "+op, "group", group, "phase", next.Phase)
	return c.save(ctx, &next)
}
