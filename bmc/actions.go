package bmc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"
)

// Errors of Power.
var (
	ErrUnknownNode = errors.New("no such node in the rack config")
	ErrNoLink      = errors.New("the node's HAT is not connected")
	ErrBadAction   = errors.New("unknown power action")
	ErrNodeOff     = errors.New("the node is off")
)

// Status is a node's board-management state, as the dashboard and
// `racklet-boot power` show it.
type Status struct {
	Node      string    `json:"node"`
	Connected bool      `json:"connected"` // its HAT's link is up
	Key       string    `json:"key,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	On        bool      `json:"on"`       // as the HAT last reported
	Boot      uint64    `json:"boot"`     // the HAT's boot counter
	Want      bool      `json:"want"`     // the power wanted
	WantBy    string    `json:"wantBy"`   // who wants it: "config" or an operator
	Slot      string    `json:"slot"`     // committed A/B slot, as the HAT keeps it
	NextSlot  string    `json:"nextSlot"` // the slot it boots next
	Note      string    `json:"note,omitempty"`
}

// Status returns node's board-management state; ok is false when the
// config does not name the node.
func (s *Server) Status(node string) (Status, bool) {
	cfgOn, ok := s.opts.Directory.ConfigPower(node)
	if !ok {
		return Status{}, false
	}
	st := Status{Node: node}
	st.Want, st.WantBy = s.intents.desired(node, cfgOn)
	s.mu.Lock()
	sess := s.sessions[node]
	s.mu.Unlock()
	if sess == nil {
		return st, true
	}
	st.Connected, st.Key, st.Serial, st.Remote, st.Since = true, sess.key, sess.serial, sess.remote, sess.since
	sess.st.Lock()
	st.On, st.Boot, st.Slot, st.NextSlot = sess.st.on, sess.st.counter, sess.st.slot, sess.st.next
	sess.st.Unlock()
	return st, true
}

// Connected lists the nodes whose HATs are connected, sorted.
func (s *Server) Connected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sessions))
	for n := range s.sessions {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Power carries out an operator's power action on node: "on" and "off"
// become the node's wanted power (until the config's power for it
// changes) and are applied now if its HAT is connected, else when it
// connects; "cycle" power-cycles a node that is on, now. by names who
// asked, for the timeline.
func (s *Server) Power(ctx context.Context, node, action, by string) (Status, error) {
	cfgOn, ok := s.opts.Directory.ConfigPower(node)
	if !ok {
		return Status{}, fmt.Errorf("%w: %s", ErrUnknownNode, node)
	}
	if by == "" {
		by = "an operator"
	}
	s.mu.Lock()
	sess := s.sessions[node]
	s.mu.Unlock()
	switch action {
	case "on", "off":
		on := action == "on"
		if err := s.intents.put(node, Intent{On: on, By: by, At: time.Now().UTC(), Config: cfgOn}); err != nil {
			return Status{}, err
		}
		if sess == nil {
			s.event(ctx, node, "power.requested", fmt.Sprintf("%s, asked by %s: applied when the node's HAT connects", action, by), nil)
			st, _ := s.Status(node)
			st.Note = "recorded; applied when the node's HAT connects"
			return st, nil
		}
		if err := s.reconcile(ctx, sess, node); err != nil {
			return Status{}, fmt.Errorf("power %s %s: %w", action, node, err)
		}
	case "cycle":
		if sess == nil {
			return Status{}, fmt.Errorf("power cycle %s: %w", node, ErrNoLink)
		}
		if want, wby := s.intents.desired(node, cfgOn); !want {
			return Status{}, fmt.Errorf("power cycle %s: %w (wanted off by %s): power it on instead", node, ErrNodeOff, wby)
		}
		sess.mu.Lock()
		n, err := sess.c.PowerCycle(ctx)
		if err == nil {
			sess.setPower(powerStatus(true, n))
		}
		sess.mu.Unlock()
		if err != nil {
			return Status{}, fmt.Errorf("power cycle %s: %w", node, err)
		}
		s.log.Info("node power-cycled", "node", node, "by", by, "boot", n)
		s.event(ctx, node, "power.cycle", fmt.Sprintf("asked by %s: boot %d", by, n), nil)
	default:
		return Status{}, fmt.Errorf("%w %q: on, off or cycle", ErrBadAction, action)
	}
	st, _ := s.Status(node)
	return st, nil
}
