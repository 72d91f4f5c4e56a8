package dhcp

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/store"
)

// Settings is the live DHCP configuration. The server keeps it behind an
// atomic pointer; Server.Update swaps it on a config reload.
type Settings struct {
	Mode       rack.DHCPMode // proxy | full (off: the server answers nothing)
	ServerAddr netip.Addr    // siaddr, option 54 (own replies), option 66, URLs
	HTTPPort   int           // port in boot URLs; 0 means 80
	Subnet     netip.Prefix  // full mode; zero means the /24 around ServerAddr
	Pool       *rack.Pool    // full mode: the dynamic range
	Router     netip.Addr    // option 3 (full mode)
	DNS        []netip.Addr  // option 6 (full mode)
	Domain     string        // option 15 (full mode)
	LeaseTime  time.Duration // option 51; zero means one hour
	PiMenu     string        // option 43 menu text; "" means DefaultPiMenu
	Unknown    rack.UnknownPolicy
	Inventory  Inventory // who is this MAC or serial; nil knows nobody
	// Default is the boot source of unknown machines under UnknownDefault
	// (its EFI name is used for UEFI clients); may be nil.
	Default *rack.Boot
}

// Inventory answers "who is this machine?" for the DHCP server.
type Inventory interface {
	// NodeBySerial finds a node by Pi serial (8 lower-case hex digits).
	NodeBySerial(serial string) (rack.Node, bool)
	// NodeByMAC finds a node by MAC address.
	NodeByMAC(mac net.HardwareAddr) (rack.Node, bool)
	// NodeByAddr finds the node whose static reservation (Node.Address) is addr.
	NodeByAddr(addr netip.Addr) (rack.Node, bool)
}

// LeaseStore persists leases; store.Store satisfies it. PutLease must be
// durable when it returns: the server sends an ACK only after it.
type LeaseStore interface {
	PutLease(ctx context.Context, l store.Lease) error
	DeleteLease(ctx context.Context, mac string) error
	Leases(ctx context.Context) ([]store.Lease, error)
}

// EventSink records machines and their boot events; store.Store satisfies it.
type EventSink interface {
	AddEvent(ctx context.Context, e store.Event) error
	PutNode(ctx context.Context, n store.Node) error
	Node(ctx context.Context, key string) (store.Node, bool, error)
}

var (
	_ LeaseStore = store.Store(nil)
	_ EventSink  = store.Store(nil)
)

// rackInventory indexes a rack config's nodes.
type rackInventory struct {
	byMAC    map[string]rack.Node
	bySerial map[string]rack.Node
	byAddr   map[netip.Addr]rack.Node
}

// InventoryFromRack indexes cfg.Nodes by MAC, serial and reserved address. The index is a
// snapshot: build a new one (and call Server.Update) on a config reload.
func InventoryFromRack(cfg *rack.Config) Inventory {
	inv := rackInventory{byMAC: map[string]rack.Node{}, bySerial: map[string]rack.Node{}, byAddr: map[netip.Addr]rack.Node{}}
	if cfg == nil {
		return inv
	}
	for _, n := range cfg.Nodes {
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

func (i rackInventory) NodeBySerial(serial string) (rack.Node, bool) {
	n, ok := i.bySerial[strings.ToLower(serial)]
	return n, ok
}

func (i rackInventory) NodeByMAC(mac net.HardwareAddr) (rack.Node, bool) {
	n, ok := i.byMAC[mac.String()]
	return n, ok
}

func (i rackInventory) NodeByAddr(addr netip.Addr) (rack.Node, bool) {
	n, ok := i.byAddr[addr]
	return n, ok
}

// SettingsFromRack builds Settings from a validated rack config.
func SettingsFromRack(cfg *rack.Config) Settings {
	s := Settings{
		Mode:       cfg.DHCP.Mode,
		ServerAddr: cfg.Server.Address,
		HTTPPort:   cfg.Server.HTTPPort,
		Subnet:     cfg.DHCP.Subnet,
		Pool:       cfg.DHCP.Pool,
		Router:     cfg.DHCP.Router,
		DNS:        cfg.DHCP.DNS,
		Domain:     cfg.DHCP.Domain,
		LeaseTime:  cfg.DHCP.LeaseTime,
		PiMenu:     cfg.DHCP.PiMenu,
		Unknown:    cfg.UnknownMachines,
		Inventory:  InventoryFromRack(cfg),
		Default:    cfg.Default,
	}
	return s
}

// normalized fills defaults without changing the caller's copy.
func (s Settings) normalized() *Settings {
	if !s.Subnet.IsValid() && s.ServerAddr.Is4() {
		s.Subnet = netip.PrefixFrom(s.ServerAddr, 24).Masked()
	}
	s.Subnet = s.Subnet.Masked()
	if s.LeaseTime <= 0 {
		s.LeaseTime = time.Hour
	}
	if s.PiMenu == "" {
		s.PiMenu = DefaultPiMenu
	}
	if s.Unknown == "" {
		s.Unknown = rack.UnknownIgnore
	}
	if s.Mode == "" {
		s.Mode = rack.DHCPProxy
	}
	return &s
}
