package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Options are a Server's collaborators and knobs; the zero value of each
// field is usable except Leases in full mode.
type Options struct {
	Log    *slog.Logger // nil discards
	Leases LeaseStore   // persisted leases; required in full mode
	Events EventSink    // node records and boot events; may be nil

	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// ClientPort is where replies to clients go; 0 means 68.
	ClientPort int
	// RelayPort is where replies to a relay agent (giaddr) go; 0 means 67.
	RelayPort int
	// BroadcastAddr is where broadcast replies go; the zero value means
	// 255.255.255.255 (leaving through the interface the conn is bound to).
	BroadcastAddr netip.Addr
	// Workers is how many packets are handled at once; 0 means 1024. Lease
	// writes of concurrent packets can share one store commit.
	Workers int
}

// Server is a DHCPv4 server for network-booting machines, in full mode
// (addresses and boot options) or proxy mode (boot options beside another
// DHCP server). Create it with New; its Options may be changed before
// Serve. One Server may Serve several conns at once (port 67 and 4011);
// they share its lease state.
type Server struct {
	Options

	settings atomic.Pointer[Settings]

	mu     sync.Mutex // guards table and loaded
	table  *leaseTable
	loaded bool

	sink   chan sinkItem
	recall recall
}

// New returns a server with the given settings and options.
func New(s Settings, opts Options) *Server {
	srv := &Server{Options: opts, table: newLeaseTable(), sink: make(chan sinkItem, 4096)}
	srv.Update(s)
	return srv
}

// Update swaps the live settings (config reload). Bound leases are kept:
// one outside a new pool stays valid until it expires, one outside a new
// subnet is logged and refused at its next renewal.
func (s *Server) Update(st Settings) {
	n := st.normalized()
	s.settings.Store(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.table.setPool(n)
	now := s.now()
	for _, l := range s.table.byAddr {
		if l.State != StateBound || !l.Expiry.After(now) {
			continue
		}
		switch {
		case n.Subnet.IsValid() && !n.Subnet.Contains(l.Addr):
			s.log().Warn("bound lease is outside the new subnet: it stays until it expires, its renewal will be refused",
				"mac", l.MAC, "addr", l.Addr, "subnet", n.Subnet, "expiry", l.Expiry)
		case !s.table.inPool(l.Addr):
			s.log().Info("bound lease is outside the new pool: kept until it expires", "mac", l.MAC, "addr", l.Addr)
		}
	}
}

// LeaseCounts returns how many unexpired leases the server holds in each
// state (StateOffered, StateBound, StateDeclined), e.g. for metrics.
func (s *Server) LeaseCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.table.outstanding(s.now())
}

// Settings returns the live settings.
func (s *Server) Settings() Settings { return *s.settings.Load() }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

var discard = slog.New(slog.DiscardHandler)

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return discard
	}
	return s.Log
}

// ErrNoLeaseStore is returned by Serve in full mode without a LeaseStore.
var ErrNoLeaseStore = errors.New("dhcp full mode needs a lease store (Server.Leases)")

// load reads the persisted leases once.
func (s *Server) load(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return nil
	}
	if s.Leases == nil {
		if s.settings.Load().Mode == ModeFull {
			return ErrNoLeaseStore
		}
		s.loaded = true
		return nil
	}
	ls, err := s.Leases.Leases(ctx)
	if err != nil {
		return fmt.Errorf("load dhcp leases: %w", err)
	}
	s.table.load(ls)
	s.loaded = true
	s.log().Info("dhcp leases loaded", "count", len(ls))
	return nil
}

type packet struct {
	data []byte
	peer net.Addr
}

// Serve answers DHCP on conn until ctx ends, then closes conn and returns
// nil. A conn whose local port is 4011 serves PXE boot-server requests
// (proxy mode). Bad packets are logged and dropped; only a failing conn
// makes Serve return an error.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if err := s.load(ctx); err != nil {
		conn.Close()
		return err
	}
	altPort := false
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok && ua.Port == PXEPort {
		altPort = true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := s.Workers
	if workers <= 0 {
		workers = 1024
	}
	// One goroutine per packet, at most workers at once: a REQUEST waiting
	// for its lease commit never delays a DISCOVER behind it. When all are
	// busy, the read loop waits and the kernel's socket buffer absorbs or
	// drops the excess.
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); s.drainSink(ctx) }()
	go func() { <-ctx.Done(); conn.Close() }()
	var rerr error
	buf := make([]byte, 65536)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil {
				rerr = fmt.Errorf("read dhcp packet: %w", err)
			}
			break
		}
		p := packet{data: append([]byte(nil), buf[:n]...), peer: peer}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			s.serveOne(ctx, conn, p, altPort)
		}()
	}
	cancel()
	wg.Wait()
	return rerr
}

// serveOne handles one packet and sends the reply, if any.
func (s *Server) serveOne(ctx context.Context, conn net.PacketConn, p packet, altPort bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log().Error("dhcp handler panic: packet dropped", "peer", p.peer, "panic", r)
		}
	}()
	reply, dst := s.handle(ctx, p.data, p.peer, altPort)
	if reply == nil {
		return
	}
	if _, err := conn.WriteTo(reply, dst); err != nil && ctx.Err() == nil {
		s.log().Warn("send dhcp reply", "to", dst, "err", err)
	}
}
