package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/ab/rollout"
	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/enrol"
	"github.com/racklet/racklet-boot/store"
)

// NodeCard is one node as the dashboard draws it.
type NodeCard struct {
	Name   string `json:"name"`
	Slot   int    `json:"slot"` // position in the rack: the node's order in the config, from 1
	Kind   string `json:"kind"`
	Serial string `json:"serial,omitempty"`
	MAC    string `json:"mac,omitempty"`
	Addr   string `json:"addr,omitempty"`
	Image  string `json:"image"` // its boot source
	// State is "off", "booting", "healthy", "failed" or "unknown"; Stage
	// says more (the boot stage, or the failure).
	State       string      `json:"state"`
	Stage       string      `json:"stage,omitempty"`
	Attestation string      `json:"attestation"` // ok, refused or none
	Power       bmc.Status  `json:"power"`
	Last        store.Event `json:"last,omitzero"`
	Approved    bool        `json:"approved,omitempty"` // from the approved-nodes overlay
	// AB is the node's A/B state (package ab) for a node that boots an
	// image: slot and image served now, state, attempts, last reason.
	AB *rollout.NodeStatus `json:"ab,omitempty"`
}

// RackView is the body of GET /api/v1/admin/rack.
type RackView struct {
	Nodes   []NodeCard      `json:"nodes"`
	Pending []enrol.Pending `json:"pending"`
	Time    time.Time       `json:"time"`
}

// card builds a node's card from the config, its HAT and its last events.
func (s *Server) card(ctx context.Context, name string) (NodeCard, bool) {
	inv := s.inv.Load()
	n, ok := inv.ByName(name)
	if !ok {
		return NodeCard{}, false
	}
	c := NodeCard{Name: n.Name, Kind: string(n.Kind), Serial: n.Serial, Image: bootLabel(n.Boot), Approved: n.Source != ""}
	for i, m := range inv.Nodes() {
		if m.Name == name {
			c.Slot = i + 1
		}
	}
	if n.MAC != nil {
		c.MAC = n.MAC.String()
	}
	c.Power, _ = s.bmc.Status(name)
	if ns, ok := rollout.NodeStatusOf(s.ab.m, name); ok && n.Boot.Image != "" {
		c.AB = &ns
	}
	if rec, ok, err := s.state.Node(ctx, name); err == nil && ok {
		c.Addr = rec.Addr
	}
	evs, _ := s.state.Events(ctx, name, 64)
	c.State, c.Stage, c.Attestation = nodeState(evs, c.Power)
	if len(evs) > 0 {
		c.Last = evs[len(evs)-1]
	}
	return c, true
}

// nodeState reads a node's state from its newest events and its HAT.
func nodeState(evs []store.Event, p bmc.Status) (state, stage, attestation string) {
	attestation = "none"
	for i := len(evs) - 1; i >= 0; i-- {
		if t := evs[i].Type; t == "attest.ok" || t == "attest.refused" {
			attestation = strings.TrimPrefix(t, "attest.")
			break
		}
	}
	if p.Connected && !p.On {
		return "off", "switched off", attestation
	}
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		switch {
		case e.Type == "agent.healthy":
			return "healthy", "", attestation
		case e.Type == "agent."+bootparams.StageKubernetes:
			continue // the booted OS's join: the KUBERNETES column, not the boot's state
		case isFailure(e.Type):
			return "failed", e.Detail, attestation
		case e.Type == "power.off":
			return "off", e.Detail, attestation
		case e.Type == "power.on" || e.Type == "power.cycle":
			return "booting", "powered on", attestation
		case strings.HasPrefix(e.Type, "agent."):
			return "booting", strings.TrimPrefix(e.Type, "agent."), attestation
		case e.Type == "attest.ok":
			return "booting", "attested", attestation
		case strings.HasPrefix(e.Type, "dhcp."), strings.HasPrefix(e.Type, "tftp."), e.Type == "http.get":
			return "booting", "firmware", attestation
		}
	}
	return "unknown", "", attestation
}

func (s *Server) rackView(r *http.Request) RackView {
	v := RackView{Pending: s.pending(r), Time: time.Now().UTC()}
	for _, n := range s.inv.Load().Nodes() {
		if c, ok := s.card(r.Context(), n.Name); ok {
			v.Nodes = append(v.Nodes, c)
		}
	}
	return v
}

func (s *Server) serveRack(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, http.StatusOK, s.rackView(r))
}

func (s *Server) serveNodeCard(w http.ResponseWriter, r *http.Request) {
	c, ok := s.card(r.Context(), r.PathValue("node"))
	if !ok {
		adminError(w, http.StatusNotFound, fmt.Errorf("%w: %s", bmc.ErrUnknownNode, r.PathValue("node")))
		return
	}
	adminJSON(w, http.StatusOK, c)
}

// serveStream is the dashboard's live feed (server-sent events): "rack"
// with the whole view first and after a config change, "node" with a
// node's card whenever it changes, "pending" with the pending machines,
// "rollouts" with every group's rollout when one moves.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	ch, cancel, ok := s.hub.subscribe()
	if !ok {
		adminError(w, http.StatusServiceUnavailable, fmt.Errorf("too many dashboards are watching (%d)", maxStreams))
		return
	}
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	rc := http.NewResponseController(w)
	send := func(event string, v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("rack", s.rackView(r)) {
		return
	}
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stopping:
			return
		case <-heartbeat.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case what := <-ch:
			var ok bool
			switch what {
			case "":
				ok = send("pending", s.pending(r))
			case rolloutTopic:
				ok = send("rollouts", s.Rollouts())
			case "*":
				ok = send("rack", s.rackView(r))
			default:
				c, known := s.card(r.Context(), what)
				ok = !known || send("node", c)
			}
			if !ok {
				return
			}
		}
	}
}

func eventNow(node, typ, detail string) store.Event {
	return store.Event{Time: time.Now().UTC(), Node: node, Type: typ, Detail: detail}
}
