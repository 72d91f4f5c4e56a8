package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Memory is an in-memory Store with the same semantics as Bolt (validation,
// MAC normalisation, ordering, the per-node event bound, ErrClosed), for unit
// tests of the packages that use a Store. Nothing survives the process.
type Memory struct {
	mu         sync.Mutex
	closed     bool
	eventLimit int
	leases     map[string]Lease
	nodes      map[string]Node
	events     map[string][]Event
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store keeping DefaultEventLimit events per node.
func NewMemory() *Memory { return NewMemoryLimit(DefaultEventLimit) }

// NewMemoryLimit returns an empty in-memory store keeping limit events per
// node (at least 1).
func NewMemoryLimit(limit int) *Memory {
	if limit < 1 {
		limit = 1
	}
	return &Memory{
		eventLimit: limit,
		leases:     make(map[string]Lease),
		nodes:      make(map[string]Node),
		events:     make(map[string][]Event),
	}
}

// lock takes the mutex and checks the store is open and ctx alive.
func (m *Memory) lock(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("%s: %w", op, ErrClosed)
	}
	return nil
}

// PutLease stores (or replaces) the lease of l.MAC.
func (m *Memory) PutLease(ctx context.Context, l Lease) error {
	if err := checkLease(&l); err != nil {
		return fmt.Errorf("put lease: %w", err)
	}
	if err := m.lock(ctx, "put lease"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.leases[l.MAC] = l
	return nil
}

// DeleteLease removes the lease of mac; deleting a missing lease is not an error.
func (m *Memory) DeleteLease(ctx context.Context, mac string) error {
	key, err := leaseKey(mac)
	if err != nil {
		return fmt.Errorf("delete lease: %w", err)
	}
	if err := m.lock(ctx, "delete lease"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	delete(m.leases, key)
	return nil
}

// Leases returns every lease, ordered by MAC.
func (m *Memory) Leases(ctx context.Context) ([]Lease, error) {
	if err := m.lock(ctx, "read leases"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Lease
	for _, l := range m.leases {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out, nil
}

// PutNode stores (or replaces) the node n.Key.
func (m *Memory) PutNode(ctx context.Context, n Node) error {
	if err := checkKey("node", n.Key); err != nil {
		return fmt.Errorf("put node: %w", err)
	}
	if err := m.lock(ctx, "put node"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.nodes[n.Key] = n
	return nil
}

// Node returns the node stored under key; ok is false when there is none.
func (m *Memory) Node(ctx context.Context, key string) (Node, bool, error) {
	if err := m.lock(ctx, "read node"); err != nil {
		return Node{}, false, err
	}
	defer m.mu.Unlock()
	n, ok := m.nodes[key]
	return n, ok, nil
}

// Nodes returns every node, ordered by key.
func (m *Memory) Nodes(ctx context.Context) ([]Node, error) {
	if err := m.lock(ctx, "read nodes"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Node
	for _, n := range m.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// AddEvent appends e to the log of e.Node, dropping the oldest past the limit.
func (m *Memory) AddEvent(ctx context.Context, e Event) error {
	if err := checkEvent(&e); err != nil {
		return fmt.Errorf("add event: %w", err)
	}
	if err := m.lock(ctx, "add event"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	log := append(m.events[e.Node], e)
	if len(log) > m.eventLimit {
		log = append([]Event(nil), log[len(log)-m.eventLimit:]...)
	}
	m.events[e.Node] = log
	return nil
}

// Events returns the newest limit events of node (all kept when limit <= 0), oldest first.
func (m *Memory) Events(ctx context.Context, node string, limit int) ([]Event, error) {
	if err := m.lock(ctx, "read events"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	log := m.events[node]
	if limit > 0 && len(log) > limit {
		log = log[len(log)-limit:]
	}
	if len(log) == 0 {
		return nil, nil
	}
	return append([]Event(nil), log...), nil
}

// Close marks the store closed; later calls return ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
