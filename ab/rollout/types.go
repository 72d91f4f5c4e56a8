package rollout

import (
	"time"

	"github.com/racklet/racklet-boot/ab"
	"github.com/racklet/racklet-boot/rack"
)

// Group is what the controller is told about one group of the rack config.
type Group struct {
	Name    string
	Members []string // node names, in config order: batches follow it
	Image   ab.Image // the image the group should run
	Policy  Policy
}

// Policy is a group's rollout policy, with maxUnavailable resolved to a count.
type Policy struct {
	MaxUnavailable int                `json:"maxUnavailable"`
	HealthTimeout  time.Duration      `json:"healthTimeout"`
	Attempts       int                `json:"attempts"`
	OnFailure      rack.FailurePolicy `json:"onFailure"`
	Pause          time.Duration      `json:"pause,omitempty"`
}

// FromRack converts a validated rack group whose image resolved to img.
func FromRack(g rack.Group, img ab.Image) Group {
	r := g.Rollout
	return Group{Name: g.Name, Members: append([]string(nil), g.Members...), Image: img, Policy: Policy{
		MaxUnavailable: r.MaxUnavailable.Of(len(g.Members)), HealthTimeout: r.HealthTimeout,
		Attempts: r.Attempts, OnFailure: r.OnFailure, Pause: r.Pause}}
}

// Phase is where a group's rollout is.
type Phase string

// Phases.
const (
	PhaseDone    Phase = "done"    // every member runs To (or failed to take it); nothing to do
	PhaseRunning Phase = "running" // batches of To are being assigned
	PhaseHalted  Phase = "halted"  // a member rolled back: no new batch until resumed or undone
	PhaseUndoing Phase = "undoing" // batches of From are being given back
)

// Rollout is one group's rollout record, as journaled.
type Rollout struct {
	Group string `json:"group"`
	Seq   uint64 `json:"seq"`
	// From is the image the group ran before; To the image it is moving to.
	// After an undo, both are the old image.
	From ab.Image `json:"from"`
	To   ab.Image `json:"to"`
	// Config is the image the config named at the last Apply: only a
	// change of it starts (or undoes) a rollout, so an operator's undo
	// holds while the config still names the undone image.
	Config ab.Image `json:"config,omitzero"`
	Phase  Phase    `json:"phase"`
	Paused bool     `json:"paused,omitempty"`
	Policy Policy   `json:"policy"`
	// Batch counts the batches started; BatchAt is when the last one
	// started and SettledAt when it settled (the pause runs from there).
	Batch     int       `json:"batch"`
	BatchAt   time.Time `json:"batchAt,omitzero"`
	SettledAt time.Time `json:"settledAt,omitzero"`
	// Failed lists the members whose trial was rolled back and already
	// acted on (halt, rollback), so resuming does not halt on them again.
	Failed []string `json:"failed,omitempty"`
	Reason string   `json:"reason,omitempty"`
}

// target is the image the rollout moves members to now.
func (r *Rollout) target() ab.Image {
	if r.Phase == PhaseUndoing {
		return r.From
	}
	return r.To
}

// NodeStatus is one member as `racklet-boot rollout status` prints it.
type NodeStatus struct {
	Node      string   `json:"node" yaml:"node"`
	Slot      string   `json:"slot" yaml:"slot"`   // the slot it boots now
	Image     string   `json:"image" yaml:"image"` // digest of what it boots now
	Ref       string   `json:"ref,omitempty" yaml:"ref,omitempty"`
	Committed string   `json:"committed" yaml:"committed"` // digest of its committed image
	State     ab.State `json:"state" yaml:"state"`
	Attempt   int      `json:"attempt,omitempty" yaml:"attempt,omitempty"`
	Allowed   int      `json:"allowed,omitempty" yaml:"allowed,omitempty"`
	Flagged   bool     `json:"flagged,omitempty" yaml:"flagged,omitempty"`
	Reason    string   `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// GroupStatus is one group's rollout with its members.
type GroupStatus struct {
	Group    string       `json:"group" yaml:"group"`
	Phase    Phase        `json:"phase" yaml:"phase"`
	Paused   bool         `json:"paused,omitempty" yaml:"paused,omitempty"`
	From     string       `json:"from" yaml:"from"`
	To       string       `json:"to" yaml:"to"`
	Batch    int          `json:"batch" yaml:"batch"`
	AtTarget int          `json:"atTarget" yaml:"atTarget"` // members committed to the target
	Trying   int          `json:"trying" yaml:"trying"`     // members out of service now
	Failed   int          `json:"failed" yaml:"failed"`     // members whose trial was rolled back
	Total    int          `json:"total" yaml:"total"`
	Reason   string       `json:"reason,omitempty" yaml:"reason,omitempty"`
	Nodes    []NodeStatus `json:"nodes" yaml:"nodes"`
}
