// Package dhcptest helps test the DHCP server: an in-memory lease and event
// store, a loopback client that captures replies, and a guard for tests that
// need root or a tool.
package dhcptest

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/racklet/racklet-boot/store"
)

// Store is an in-memory dhcp.LeaseStore and dhcp.EventSink. It is safe for
// concurrent use. SetFail makes lease writes fail.
type Store struct {
	mu     sync.Mutex
	leases map[string]store.Lease
	nodes  map[string]store.Node
	events []store.Event
	fail   error
}

// SetFail makes PutLease and DeleteLease return err (nil: succeed again).
func (s *Store) SetFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{leases: map[string]store.Lease{}, nodes: map[string]store.Node{}}
}

// ErrFail is a ready-made error for Store.SetFail.
var ErrFail = errors.New("dhcptest: injected store failure")

// PutLease stores l under l.MAC.
func (s *Store) PutLease(_ context.Context, l store.Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.leases[l.MAC] = l
	return nil
}

// DeleteLease removes the lease stored under mac.
func (s *Store) DeleteLease(_ context.Context, mac string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.leases, mac)
	return nil
}

// Leases returns all leases sorted by MAC.
func (s *Store) Leases(context.Context) ([]store.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]store.Lease, 0, len(s.leases))
	for _, l := range s.leases {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out, nil
}

// Lease returns the lease stored under mac.
func (s *Store) Lease(mac string) (store.Lease, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[mac]
	return l, ok
}

// AddEvent appends e.
func (s *Store) AddEvent(_ context.Context, e store.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
	return nil
}

// PutNode stores n under n.Key.
func (s *Store) PutNode(_ context.Context, n store.Node) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodes[n.Key] = n
	return nil
}

// Node returns the node stored under key.
func (s *Store) Node(_ context.Context, key string) (store.Node, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[key]
	return n, ok, nil
}

// Events returns a copy of the recorded events, oldest first.
func (s *Store) Events() []store.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]store.Event(nil), s.events...)
}

// Nodes returns a copy of the recorded nodes.
func (s *Store) Nodes() map[string]store.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]store.Node, len(s.nodes))
	for k, v := range s.nodes {
		out[k] = v
	}
	return out
}
