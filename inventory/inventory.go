// Package inventory is the one index of a rack's machines. New builds it
// from a validated *rack.Config into an immutable value; Live holds the
// current one and swaps it atomically on a config reload, so a lookup never
// sees half of two configs. DHCP (through the small interface it defines),
// the resolver, attestation and the node API all look machines up here;
// nothing else indexes the config's nodes.
package inventory

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/racklet/racklet-boot/rack"
)

// Inventory indexes one config's nodes by name, MAC, Pi serial and
// reserved address. It is immutable: build a new one for a new config.
// The nodes it returns point into the config and must not be modified.
type Inventory struct {
	cfg      *rack.Config
	byName   map[string]*rack.Node
	byMAC    map[string]*rack.Node // key: lower-case colon form
	bySerial map[string]*rack.Node // key: 8 lower-case hex digits
	byAddr   map[netip.Addr]*rack.Node
}

// New indexes cfg, which must not be modified afterwards. A nil cfg gives
// an empty inventory.
func New(cfg *rack.Config) *Inventory {
	if cfg == nil {
		cfg = &rack.Config{}
	}
	inv := &Inventory{
		cfg:      cfg,
		byName:   make(map[string]*rack.Node, len(cfg.Nodes)),
		byMAC:    make(map[string]*rack.Node, len(cfg.Nodes)),
		bySerial: make(map[string]*rack.Node, len(cfg.Nodes)),
		byAddr:   make(map[netip.Addr]*rack.Node),
	}
	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		inv.byName[n.Name] = n
		if len(n.MAC) > 0 {
			inv.byMAC[n.MAC.String()] = n
		}
		if n.Serial != "" {
			inv.bySerial[strings.ToLower(n.Serial)] = n
		}
		if n.Address.IsValid() {
			inv.byAddr[n.Address] = n
		}
	}
	return inv
}

// Config returns the config the inventory was built from.
func (inv *Inventory) Config() *rack.Config { return inv.cfg }

// Nodes returns the config's nodes, in config order.
func (inv *Inventory) Nodes() []rack.Node { return inv.cfg.Nodes }

// ByName returns the node with the given name.
func (inv *Inventory) ByName(name string) (*rack.Node, bool) {
	n, ok := inv.byName[name]
	return n, ok
}

// ByMAC returns the node with the given MAC address.
func (inv *Inventory) ByMAC(mac net.HardwareAddr) (*rack.Node, bool) {
	if len(mac) == 0 {
		return nil, false
	}
	n, ok := inv.byMAC[mac.String()]
	return n, ok
}

// BySerial returns the Pi with the given serial (8 hex digits, any case).
func (inv *Inventory) BySerial(serial string) (*rack.Node, bool) {
	if serial == "" {
		return nil, false
	}
	n, ok := inv.bySerial[strings.ToLower(serial)]
	return n, ok
}

// ByAddr returns the node whose static reservation (Node.Address) is a.
func (inv *Inventory) ByAddr(a netip.Addr) (*rack.Node, bool) {
	n, ok := inv.byAddr[a]
	return n, ok
}

// HATKeys returns the HAT keys the config pre-provisions, by node name.
func (inv *Inventory) HATKeys() map[string]string {
	keys := map[string]string{}
	for _, n := range inv.cfg.Nodes {
		if n.HATKey != "" {
			keys[n.Name] = n.HATKey
		}
	}
	return keys
}

// Prefix is the boot-file name prefix that names n to the resolver without
// its client address: its MAC with dashes (TFTP_PREFIX=2, and the iPXE
// script URLs), else its serial (TFTP_PREFIX=0), else "" (no prefix names it).
func Prefix(n *rack.Node) string {
	switch {
	case len(n.MAC) == 6:
		return DashedMAC(n.MAC)
	case n.Serial != "":
		return strings.ToLower(n.Serial)
	}
	return ""
}

// DashedMAC writes a MAC in the TFTP_PREFIX=2 form: "dc-a6-32-01-36-c2".
func DashedMAC(mac net.HardwareAddr) string {
	return strings.ReplaceAll(mac.String(), ":", "-")
}

// Live is the current inventory, swapped atomically on reload. The zero
// value holds an empty inventory.
type Live struct {
	p atomic.Pointer[Inventory]
}

// NewLive returns a Live holding New(cfg).
func NewLive(cfg *rack.Config) *Live {
	l := &Live{}
	l.Store(New(cfg))
	return l
}

// Load returns the current inventory.
func (l *Live) Load() *Inventory {
	if inv := l.p.Load(); inv != nil {
		return inv
	}
	return New(nil)
}

// Store makes inv the current inventory.
func (l *Live) Store(inv *Inventory) { l.p.Store(inv) }
