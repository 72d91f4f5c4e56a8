package ab

import (
	"context"
	"fmt"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/store"
)

// Journal is where a Machine keeps its state: store.Bolt and store.Memory
// implement it. PutRecords must be durable and all-or-none.
type Journal interface {
	PutRecords(ctx context.Context, recs ...store.Record) error
	Records(ctx context.Context, prefix string) ([]store.Record, error)
}

// Slot is an A/B slot, numbered as the HAT numbers them (hatlink.SlotA, SlotB).
type Slot uint8

// The two slots.
const (
	SlotA = Slot(hatlink.SlotA)
	SlotB = Slot(hatlink.SlotB)
)

// Other returns the other slot.
func (s Slot) Other() Slot { return 1 - s&1 }

// String is "a" or "b", as the resolver's {{.Slot}} and the status print it.
func (s Slot) String() string { return string(rune('a' + s&1)) }

// Image identifies what a node boots: the reference as configured (for
// operators) and the manifest digest (what is served and attested).
type Image struct {
	Ref    string `json:"ref,omitempty"`
	Digest string `json:"digest"`
}

// IsZero reports whether no image is named.
func (i Image) IsZero() bool { return i.Digest == "" }

// Same reports whether both name the same bytes (the digest decides).
func (i Image) Same(o Image) bool { return i.Digest == o.Digest }

// String names the image for messages: its reference, else its digest.
func (i Image) String() string {
	switch {
	case i.Ref != "":
		return i.Ref
	case i.Digest != "":
		return i.Digest
	}
	return "(none)"
}

// State is where a node is in its A/B cycle.
type State string

// Node states.
const (
	// StateCommitted: the node boots its committed image; no trial pending.
	StateCommitted State = "committed"
	// StateTrying: a trial attempt is under way; the node boots the trial
	// until it reports or the attempt's deadline passes.
	StateTrying State = "trying"
	// StateRolledBack: the trial used its budget; the node boots its
	// committed image and is flagged for an operator.
	StateRolledBack State = "rolled-back"
)

// Outcome is how the last trial attempt (or the whole trial) ended.
type Outcome string

// Outcomes.
const (
	OutcomeNone      Outcome = ""
	OutcomeHealthy   Outcome = "healthy"      // the trial reported healthy and was committed
	OutcomeFailed    Outcome = "failed"       // the node reported a failure (verity, attestation, health check)
	OutcomeSilent    Outcome = "silent"       // no report before the attempt's deadline
	OutcomeSpent     Outcome = "budget-spent" // the HAT refused an attempt: the slot had none left
	OutcomeCancelled Outcome = "cancelled"    // the trial was withdrawn (undo, config edited back)
	OutcomeRefused   Outcome = "refused"      // the trial was never started (its budget was spent before)
)

// Policy bounds a trial.
type Policy struct {
	// Attempts is how many boots the trial gets (default DefaultAttempts).
	Attempts int `json:"attempts"`
	// HealthTimeout is how long one attempt may take from its power cycle to
	// the healthy report (default DefaultHealthTimeout).
	HealthTimeout time.Duration `json:"healthTimeout"`
}

// Policy defaults.
const (
	DefaultAttempts      = 3
	DefaultHealthTimeout = 10 * time.Minute
	// MaxAttempts is what a HAT's 8-bit counter can hold.
	MaxAttempts = 255
)

// withDefaults fills in the defaults.
func (p Policy) withDefaults() Policy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultAttempts
	}
	if p.HealthTimeout <= 0 {
		p.HealthTimeout = DefaultHealthTimeout
	}
	return p
}

// validate checks a policy after defaults.
func (p Policy) validate() error {
	if p.Attempts > MaxAttempts {
		return fmt.Errorf("%d attempts: a HAT counts at most %d", p.Attempts, MaxAttempts)
	}
	return nil
}

// ActionKind is what the caller must do for a node after a transition.
type ActionKind string

// Action kinds.
const (
	// PowerCycle: cut and restore the node's power through its HAT
	// (hatlink PowerCycle; QMP system_reset under QEMU), so it boots what
	// Machine.Boot now says.
	PowerCycle ActionKind = "power-cycle"
)

// Action is one thing the caller must do, then acknowledge with Machine.Ack.
// Performing it twice is harmless (one more reboot); never performing it
// costs an attempt (the node stays silent past its deadline).
type Action struct {
	Node string     `json:"node"`
	Kind ActionKind `json:"kind"`
	Seq  uint64     `json:"seq"` // the node's transition that asked for it
}

// Witness is the last HAT A/B state a node reported (hatlink.BootState).
type Witness struct {
	Committed Slot   `json:"committed"`
	Limit     int    `json:"limit"`
	Attempts  [2]int `json:"attempts"`
	Counter   uint64 `json:"counter"` // the HAT's monotonic boot counter
	// Refused: the HAT answered BootAttempt with not allowed (the slot's
	// budget was spent before this boot): the node falls back.
	Refused bool      `json:"refused,omitempty"`
	Time    time.Time `json:"time"`
}

// WitnessOf converts a hatlink.BootState.
func WitnessOf(s hatlink.BootState) Witness {
	return Witness{Committed: Slot(s.Committed), Limit: int(s.Limit), Attempts: [2]int{int(s.Attempts[0]), int(s.Attempts[1])},
		Counter: s.Counter, Refused: !s.Allowed}
}

// spent reports whether slot has used its whole budget without being committed.
func (w *Witness) spent(slot Slot) bool {
	return w != nil && w.Committed != slot && w.Limit > 0 && w.Attempts[slot] >= w.Limit
}

// Node is the A/B record of one node: what the journal holds and the status shows.
type Node struct {
	Name string `json:"name"`
	// Seq counts the node's transitions; the journal keeps the highest.
	Seq           uint64 `json:"seq"`
	CommittedSlot Slot   `json:"committedSlot"`
	Committed     Image  `json:"committed"`
	// Trial is the image being tried (StateTrying) or the last one that
	// failed (StateRolledBack); zero otherwise.
	Trial   Image         `json:"trial,omitzero"`
	State   State         `json:"state"`
	Attempt int           `json:"attempt"` // attempts started of the current trial
	Allowed int           `json:"allowed"`
	Timeout time.Duration `json:"timeout,omitempty"`
	// Deadline ends the current attempt when no report came (StateTrying).
	Deadline time.Time `json:"deadline,omitzero"`
	Outcome  Outcome   `json:"outcome,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	// Flagged marks a node whose trial was rolled back or refused, for an operator.
	Flagged bool `json:"flagged,omitempty"`
	// Pending is the action the last transition asked for, until acknowledged.
	Pending ActionKind `json:"pending,omitempty"`
	// HAT is the last HAT state the node reported; SpentBy the digest of the
	// image whose trial spent the HAT's budget ("" when unknown).
	HAT     *Witness `json:"hat,omitempty"`
	SpentBy string   `json:"spentBy,omitempty"`
	// Rearm asks the agent to reset the HAT's trial counter (BootCommit of
	// the committed slot) before counting the next attempt: set when a new
	// image follows one that spent the budget.
	Rearm bool `json:"rearm,omitempty"`
	// Returning is set while the node reboots into its committed image
	// after a rollback or a withdrawn trial: it is out of service until it
	// reports healthy on it, or until this time passes.
	Returning time.Time `json:"returning,omitzero"`
	// LastBoot is the HAT boot counter of the last failure counted, so a
	// repeated report of one failed boot is counted once.
	LastBoot uint64    `json:"lastBoot,omitempty"`
	Updated  time.Time `json:"updated"`
}

// OutOfService reports whether the node is trying an image or rebooting
// back to its committed one: what a rollout's maxUnavailable bounds.
func (n *Node) OutOfService() bool { return n.State == StateTrying || !n.Returning.IsZero() }

// TrialSlot is the slot a trial goes to: the one not committed.
func (n *Node) TrialSlot() Slot { return n.CommittedSlot.Other() }

// Decision is what a node boots now.
type Decision struct {
	Image Image `json:"image"`
	Slot  Slot  `json:"slot"`
	// Trial is true while a trial attempt is under way; Attempt is then its
	// number (1-based) of Allowed.
	Trial   bool `json:"trial"`
	Attempt int  `json:"attempt,omitempty"`
	Allowed int  `json:"allowed,omitempty"`
	// Rearm: the agent re-arms the HAT's trial counter before BootAttempt.
	Rearm bool `json:"rearm,omitempty"`
}

// Report is what a node's agent says about the boot it is running.
type Report struct {
	// Image is the digest of the image the node booted (its racklet.root
	// or image digest); a report about another image than the trial is
	// recorded but moves nothing.
	Image string
	// Healthy is true after the node's health checks passed.
	Healthy bool
	// Reason says why the boot failed (verity refusal, attestation
	// refusal, failed health check); ignored when Healthy.
	Reason string
	// HAT is the HAT's A/B state as the agent read it, when it did.
	HAT *hatlink.BootState
}
