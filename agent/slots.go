package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
)

// ErrAttemptRefused is returned by SlotAttempt when the HAT refuses a
// trial's attempt: the slot spent its budget, the node must boot its
// committed image (racklet-boot rolls it back on the report).
var ErrAttemptRefused = errors.New("the HAT refused the trial's attempt: its slot spent its attempts")

// slotByte numbers a slot as the HAT does.
func slotByte(s string) (byte, error) {
	switch s {
	case "a":
		return hatlink.SlotA, nil
	case "b":
		return hatlink.SlotB, nil
	}
	return 0, fmt.Errorf("slot %q: want a or b", s)
}

// slotIndex is the index of a slot in HATState.Attempts.
func slotIndex(s string) int {
	if s == "b" {
		return 1
	}
	return 0
}

// HATState converts the HAT's A/B state for a report.
func HATState(s hatlink.BootState) bootparams.HATState {
	name := "a"
	if s.Committed == hatlink.SlotB {
		name = "b"
	}
	return bootparams.HATState{Committed: name, Limit: int(s.Limit), Attempts: [2]int{int(s.Attempts[0]), int(s.Attempts[1])},
		Counter: s.Counter, Allowed: s.Allowed}
}

// SlotAttempt drives the HAT's attempt counter for the boot racklet-boot
// decided (whoami's SlotBoot): an attempt of a trial re-arms the counter
// first when told (BootCommit of the committed slot resets the counts a
// previous image spent), then counts itself (BootAttempt of the trial
// slot); any other boot only reads the state. It returns the state to send
// with the boot's reports; a trial the HAT refuses returns it with
// ErrAttemptRefused. The HAT is the hardware witness: it counts on the
// Pi's own port, which racklet-boot cannot reach.
func SlotAttempt(ctx context.Context, c *hatlink.Client, d *bootparams.SlotBoot) (bootparams.HATState, error) {
	if d == nil || !d.Trial {
		s, err := c.BootState(ctx)
		if err != nil {
			return bootparams.HATState{}, fmt.Errorf("read the HAT's A/B state: %w", err)
		}
		return HATState(s), nil
	}
	slot, err := slotByte(d.Slot)
	if err != nil {
		return bootparams.HATState{}, err
	}
	if d.Rearm {
		if _, err := c.BootCommit(ctx, 1-slot); err != nil {
			return bootparams.HATState{}, fmt.Errorf("re-arm the HAT's attempt counter: %w", err)
		}
	}
	s, err := c.BootAttempt(ctx, slot)
	if err != nil {
		return bootparams.HATState{}, fmt.Errorf("count the attempt on the HAT: %w", err)
	}
	st := HATState(s)
	if !s.Allowed {
		return st, fmt.Errorf("%w (slot %s: %d of %d)", ErrAttemptRefused, d.Slot, st.Attempts[slot], st.Limit)
	}
	return st, nil
}

// SlotCommit marks a trial's slot good on the HAT (BootCommit) once the
// node reported healthy: its counters reset, it is the committed slot. A
// boot that was no trial changes nothing.
func SlotCommit(ctx context.Context, c *hatlink.Client, d *bootparams.SlotBoot) (bootparams.HATState, error) {
	if d == nil || !d.Trial {
		return bootparams.HATState{}, nil
	}
	slot, err := slotByte(d.Slot)
	if err != nil {
		return bootparams.HATState{}, err
	}
	s, err := c.BootCommit(ctx, slot)
	if err != nil {
		return bootparams.HATState{}, fmt.Errorf("commit slot %s on the HAT: %w", d.Slot, err)
	}
	return HATState(s), nil
}
