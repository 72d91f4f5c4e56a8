package dhcp

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/racklet/racklet-boot/store"
)

// sinkItem is one node record or event, written off the reply path: events
// are not worth a reply's latency, and a full queue drops them.
type sinkItem struct {
	event *store.Event
	node  *store.Node
}

// nodeRefresh is how often an unchanged node's LastSeen is rewritten.
const nodeRefresh = time.Minute

// maxNodeCache bounds the written-node cache (a flood of random MACs).
const maxNodeCache = 8192

func (s *Server) emit(key, typ, detail string) {
	if s.Events == nil {
		return
	}
	e := &store.Event{Time: s.now(), Node: key, Type: typ, Detail: detail}
	select {
	case s.sink <- sinkItem{event: e}:
	default:
		s.log().Debug("event queue full: event dropped", "node", key, "type", typ)
	}
}

func (s *Server) recordNode(n store.Node) {
	if s.Events == nil {
		return
	}
	select {
	case s.sink <- sinkItem{node: &n}:
	default:
		s.log().Debug("event queue full: node record dropped", "node", n.Key)
	}
}

// drainSink writes queued items until ctx ends.
func (s *Server) drainSink(ctx context.Context) {
	written := map[string]store.Node{}
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-s.sink:
			if s.Events == nil {
				continue
			}
			if it.event != nil {
				if err := s.Events.AddEvent(ctx, *it.event); err != nil && ctx.Err() == nil {
					s.log().Warn("record boot event", "node", it.event.Node, "type", it.event.Type, "err", err)
				}
				continue
			}
			s.writeNode(ctx, written, *it.node)
		}
	}
}

func (s *Server) writeNode(ctx context.Context, written map[string]store.Node, n store.Node) {
	prev, ok := written[n.Key]
	if !ok {
		old, found, err := s.Events.Node(ctx, n.Key)
		if err != nil {
			s.log().Warn("read node record", "node", n.Key, "err", err)
		} else if found {
			prev, ok = old, true
		}
	}
	if ok && prev.MAC != "" && n.MAC != "" && prev.MAC != n.MAC {
		// The record changes hands: a board swap, or a spoofed identity the
		// config does not pin. Never silently.
		s.log().Warn("node record now names another mac", "node", n.Key, "mac", n.MAC, "before", prev.MAC, "serial", n.Serial)
		e := store.Event{Time: s.now(), Node: n.Key, Type: "node.mac-changed",
			Detail: fmt.Sprintf("mac %s replaces %s", n.MAC, prev.MAC)}
		if err := s.Events.AddEvent(ctx, e); err != nil && ctx.Err() == nil {
			s.log().Warn("record boot event", "node", n.Key, "type", e.Type, "err", err)
		}
	}
	if ok {
		n.FirstSeen = prev.FirstSeen
		if n.Addr == "" {
			n.Addr = prev.Addr
		}
		if n.Serial == "" {
			n.Serial = prev.Serial
		}
		if n.Kind == "" {
			n.Kind = prev.Kind
		}
		if n.Arch == -1 {
			n.Arch = prev.Arch
		}
		if same(prev, n) && n.LastSeen.Sub(prev.LastSeen) < nodeRefresh {
			return
		}
	}
	if n.FirstSeen.IsZero() {
		n.FirstSeen = n.LastSeen
	}
	if err := s.Events.PutNode(ctx, n); err != nil {
		s.log().Warn("record node", "node", n.Key, "err", err)
		return
	}
	if len(written) >= maxNodeCache {
		clear(written)
	}
	written[n.Key] = n
}

func same(a, b store.Node) bool {
	return a.Name == b.Name && a.MAC == b.MAC && a.Serial == b.Serial && a.Kind == b.Kind &&
		a.Arch == b.Arch && a.Addr == b.Addr && a.Known == b.Known
}

// eventName is the store.Event type suffix of a message type.
func eventName(mt dhcpv4.MessageType) string {
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return "discover"
	case dhcpv4.MessageTypeOffer:
		return "offer"
	case dhcpv4.MessageTypeRequest:
		return "request"
	case dhcpv4.MessageTypeAck:
		return "ack"
	case dhcpv4.MessageTypeNak:
		return "nak"
	case dhcpv4.MessageTypeRelease:
		return "release"
	case dhcpv4.MessageTypeDecline:
		return "decline"
	case dhcpv4.MessageTypeInform:
		return "inform"
	}
	return fmt.Sprintf("type%d", uint8(mt))
}

func requestDetail(x *exchange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mac %s", x.mac)
	if k := x.c.Kind(); k != "" {
		fmt.Fprintf(&b, " kind %s", k)
	}
	if x.c.Serial != "" {
		fmt.Fprintf(&b, " serial %s", x.c.Serial)
	}
	if a := addr4(x.req.RequestedIPAddress()); a.IsValid() {
		fmt.Fprintf(&b, " requested %s", a)
	}
	if a := addr4(x.req.ClientIPAddr); a.IsValid() {
		fmt.Fprintf(&b, " ciaddr %s", a)
	}
	return b.String()
}

func detail(r *dhcpv4.DHCPv4) string {
	var parts []string
	if a := addr4(r.YourIPAddr); a.IsValid() {
		parts = append(parts, "addr "+a.String())
	}
	if r.BootFileName != "" {
		parts = append(parts, "file "+r.BootFileName)
	}
	if r.Options.Has(dhcpv4.OptionVendorSpecificInformation) {
		parts = append(parts, "pi boot")
	}
	if m := r.Options.Get(dhcpv4.OptionMessage); m != nil {
		parts = append(parts, "reason "+string(m))
	}
	return strings.Join(parts, " ")
}
