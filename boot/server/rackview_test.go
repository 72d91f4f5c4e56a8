package server

import (
	"testing"

	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/store"
)

// TestNodeState: the node's state comes from its newest boot events; the
// booted OS's Kubernetes join (agent.kubernetes) is not a boot stage.
func TestNodeState(t *testing.T) {
	ev := func(types ...string) []store.Event {
		var es []store.Event
		for _, typ := range types {
			es = append(es, store.Event{Type: typ})
		}
		return es
	}
	for _, tc := range []struct {
		name         string
		evs          []store.Event
		state, stage string
	}{
		{"healthy", ev("attest.ok", "agent.switched", "agent.healthy"), "healthy", ""},
		{"joined after healthy", ev("attest.ok", "agent.healthy", "agent.kubernetes"), "healthy", ""},
		{"joined before healthy", ev("attest.ok", "agent.switched", "agent.kubernetes", "agent.healthy"), "healthy", ""},
		{"joining, not yet healthy", ev("attest.ok", "agent.switched", "agent.kubernetes"), "booting", "switched"},
		{"booting", ev("dhcp.ack", "agent.network"), "booting", "network"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state, stage, _ := nodeState(tc.evs, bmc.Status{})
			if state != tc.state || stage != tc.stage {
				t.Errorf("nodeState = %q, %q; want %q, %q", state, stage, tc.state, tc.stage)
			}
		})
	}
}
