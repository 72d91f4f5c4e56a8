package dhcp

import (
	"context"
	"time"

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
