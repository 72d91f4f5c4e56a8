// Package store keeps racklet-boot's persistent state: DHCP leases, known and
// discovered nodes, and a bounded boot event log per node. The default backend
// is an embedded bbolt file under the data directory; everything else talks to
// the Store interface.
package store

import (
	"context"
	"net/netip"
	"time"
)

// Lease is one DHCP address binding.
type Lease struct {
	MAC      string     `json:"mac"` // lower-case, colon-separated; DeclinedPrefix+Addr for a quarantined address
	Addr     netip.Addr `json:"addr"`
	Node     string     `json:"node,omitempty"` // node name when the client is known
	Hostname string     `json:"hostname,omitempty"`
	Expiry   time.Time  `json:"expiry"`
	// State is "offered" (held briefly between OFFER and REQUEST), "bound",
	// or "declined" (an address a client reported in use; kept out of the pool until Expiry).
	State string `json:"state"`
}

// Node is what the server has learned about a machine, known or discovered.
type Node struct {
	Key       string    `json:"key"`  // node name for known nodes; "mac:<mac>" for discovered ones
	Name      string    `json:"name"` // "" for discovered machines
	MAC       string    `json:"mac,omitempty"`
	Serial    string    `json:"serial,omitempty"`
	Kind      string    `json:"kind,omitempty"` // as classified: rpi4, rpi5, uefi-x86_64, ipxe, ...
	Arch      int       `json:"arch,omitempty"` // option 93 value, -1 when absent
	Addr      string    `json:"addr,omitempty"`
	FirstSeen time.Time `json:"firstSeen"`
	LastSeen  time.Time `json:"lastSeen"`
	Known     bool      `json:"known"` // named in the rack config
	// Kubernetes is the node as the cluster the rack config names last
	// showed it: a live view a running racklet-boot adds when it lists its
	// nodes, never written to the store (nil: no cluster, or not looked yet).
	Kubernetes *KubeState `json:"kubernetes,omitempty"`
}

// KubeState is a node's state in its Kubernetes cluster.
type KubeState struct {
	Joined  bool      `json:"joined"`            // a Node object of the node's name exists
	Ready   bool      `json:"ready"`             // its Ready condition is True
	Version string    `json:"version,omitempty"` // kubelet version it reports
	Reason  string    `json:"reason,omitempty"`  // why it is not Ready
	Seen    time.Time `json:"seen"`              // when racklet-boot last asked the cluster
}

// String is the state in a few words, for tables and event details.
func (k *KubeState) String() string {
	switch {
	case k == nil:
		return "-"
	case !k.Joined:
		return "not joined"
	case k.Ready:
		return "Ready " + k.Version
	}
	return "NotReady " + k.Version
}

// Event is one entry of a node's boot event log.
type Event struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`            // Node.Key
	Type   string    `json:"type"`            // dhcp.discover, dhcp.offer, dhcp.request, dhcp.ack, dhcp.nak, tftp.get, tftp.error, http.get, image.refused, ...
	Detail string    `json:"detail"`          // human-readable: file name, address, reason
	Bytes  int64     `json:"bytes,omitempty"` // transferred bytes, for file events
	// Console points at the node's console lines around the event (a
	// failure), as its HAT captured them.
	Console *ConsoleRef `json:"console,omitempty"`
}

// ConsoleRef names lines From..To (1-based, inclusive) of one boot's
// console log (`racklet-boot console NODE --boot Boot`).
type ConsoleRef struct {
	Boot uint64 `json:"boot"`
	From int    `json:"from"`
	To   int    `json:"to"`
}

// Store is the persistent state behind racklet-boot. Implementations are safe
// for concurrent use. Writes are durable when the call returns: a lease
// written by PutLease survives a kill -9 right after.
type Store interface {
	PutLease(ctx context.Context, l Lease) error
	DeleteLease(ctx context.Context, mac string) error
	Leases(ctx context.Context) ([]Lease, error)

	PutNode(ctx context.Context, n Node) error
	Node(ctx context.Context, key string) (Node, bool, error)
	Nodes(ctx context.Context) ([]Node, error)

	// AddEvent appends to the node's log, dropping its oldest events past the
	// per-node bound.
	AddEvent(ctx context.Context, e Event) error
	// Events returns a node's events, oldest first; limit <= 0 means all kept.
	Events(ctx context.Context, node string, limit int) ([]Event, error)

	Close() error
}
