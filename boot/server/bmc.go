package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/bmc/consolelog"
	"github.com/racklet/racklet-boot/enrol"
	"github.com/racklet/racklet-boot/inventory"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/store"
)

// Names under the data directory for board management.
const (
	BMCDir     = "bmc"     // operators' power requests
	ConsoleDir = "console" // console logs per node and boot
)

// buildBMC makes the board-management server, the console logs and the
// enrolment book.
func (s *Server) buildBMC() error {
	var err error
	if s.console, err = consolelog.Open(filepath.Join(s.dataDir, ConsoleDir), consolelog.Options{}); err != nil {
		return err
	}
	if s.enrol, err = enrol.Open(s.dataDir); err != nil {
		return err
	}
	s.bmc, err = bmc.New(filepath.Join(s.dataDir, BMCDir), bmc.Options{
		Directory:  &bmcDirectory{inv: s.inv, enrollments: s.verifier.Enrollments},
		Events:     s.events,
		Console:    s.console,
		Discovered: s.discovered,
		Changed:    s.hub.node,
		Log:        s.component("bmc"),
	})
	return err
}

// discovered records a HAT no node owns as a pending machine, when the
// config records unknown machines at all.
func (s *Server) discovered(ctx context.Context, d bmc.Discovery) {
	if s.inv.Load().Config().UnknownMachines == rack.UnknownIgnore {
		s.log.Info("unknown HAT ignored (unknownMachines: ignore)", "serial", d.Serial, "ip", d.Remote)
		return
	}
	isNew, err := s.enrol.Seen(enrol.Pending{Key: d.Key, Serial: d.Serial, Remote: d.Remote})
	if err != nil {
		s.log.Warn("record a pending machine", "serial", d.Serial, "err", err)
		return
	}
	if isNew {
		s.log.Info("new machine awaits approval", "serial", d.Serial, "key", d.Key, "fingerprint", enrol.Fingerprint(d.Key))
	}
	s.hub.pending()
}

// bmcDirectory tells the BMC server which node a HAT key is and what
// power the config wants: the config's hatKey (approved nodes carry theirs
// in the overlay), else an approved attestation enrolment.
type bmcDirectory struct {
	inv         *inventory.Live
	enrollments verifier.Enrollments
}

func (d *bmcDirectory) NodeForKey(ctx context.Context, key string) (string, bool) {
	inv := d.inv.Load()
	for _, n := range inv.Nodes() {
		if n.HATKey != "" && strings.TrimSpace(n.HATKey) == key {
			return n.Name, true
		}
	}
	list, err := d.enrollments.ListEnrollments(ctx)
	if err != nil {
		return "", false
	}
	for _, e := range list {
		if e.Key == key && e.State == attest.Approved {
			if n, ok := inv.ByName(e.Node); ok && n.HATKey == "" {
				return n.Name, true
			}
		}
	}
	return "", false
}

func (d *bmcDirectory) ConfigPower(node string) (bool, bool) {
	n, ok := d.inv.Load().ByName(node)
	if !ok {
		return false, false
	}
	return n.Power != rack.PowerOff, true
}

// eventTap is the store as every component records events through it: a
// failure event gets the node's console lines around it, and the dashboard
// hears of every event.
type eventTap struct {
	store.Store
	ref    func(node string) *store.ConsoleRef
	notify func(node string)
}

// isFailure says which events point at the console.
func isFailure(typ string) bool {
	return typ == "agent.failed" || typ == "boot.failed" || strings.HasSuffix(typ, ".refused")
}

func (t *eventTap) AddEvent(ctx context.Context, e store.Event) error {
	if e.Console == nil && isFailure(e.Type) && t.ref != nil {
		e.Console = t.ref(e.Node)
	}
	if err := t.Store.AddEvent(ctx, e); err != nil {
		return err
	}
	if t.notify != nil {
		t.notify(e.Node)
	}
	return nil
}

// withOverlay merges the approved-nodes overlay of the data directory into
// cfg (the declarative config), logging what the config shadows.
func (s *Server) withOverlay(cfg *rack.Config) (*rack.Config, error) {
	merged, warnings, err := rack.LoadOverlay(cfg, filepath.Join(s.dataDir, rack.OverlayFile))
	if err != nil {
		return nil, fmt.Errorf("approved nodes: %w", err)
	}
	for _, w := range warnings {
		s.log.Warn("approved node ignored", "file", w.File, "line", w.Line, "reason", w.Msg)
	}
	return merged, nil
}

// hub fans node and pending-list changes out to the dashboard's streams.
type hub struct {
	mu   sync.Mutex
	subs map[chan string]struct{}
}

// maxStreams bounds the dashboards watching at once.
const maxStreams = 64

// subscribe returns a channel of changes: a node name, or "" for the
// pending list. ok is false when too many watch already.
func (h *hub) subscribe() (ch chan string, cancel func(), ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxStreams {
		return nil, nil, false
	}
	if h.subs == nil {
		h.subs = map[chan string]struct{}{}
	}
	ch = make(chan string, 128)
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}, true
}

func (h *hub) publish(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- what:
		default: // a stuck stream misses updates; it refreshes on reconnect
		}
	}
}

func (h *hub) node(name string) { h.publish(name) }
func (h *hub) pending()         { h.publish("") }
