package dhcp

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// Mode is how the server takes part in DHCP on the segment.
type Mode string

// Modes.
const (
	ModeProxy Mode = "proxy" // beside a router: boot options only, never addresses
	ModeFull  Mode = "full"  // addresses from Pool and boot options
	ModeOff   Mode = "off"   // answer nothing
)

// UnknownPolicy says what the server does for machines its Inventory does not know.
type UnknownPolicy string

// Unknown-machine policies.
const (
	UnknownIgnore   UnknownPolicy = "ignore"   // no answer at all
	UnknownDefault  UnknownPolicy = "default"  // boot them (DefaultEFI for UEFI clients)
	UnknownDiscover UnknownPolicy = "discover" // answer with an address (full mode), record them, no boot options
)

// Pool is an inclusive range of addresses handed out in full mode.
type Pool struct {
	Start netip.Addr
	End   netip.Addr
}

// Settings is the live DHCP configuration. The server keeps it behind an
// atomic pointer; Server.Update swaps it on a config reload.
type Settings struct {
	Mode       Mode          // proxy | full (off: the server answers nothing)
	ServerAddr netip.Addr    // siaddr, option 54 (own replies), option 66, URLs
	HTTPPort   int           // port in boot URLs; 0 means 80
	Subnet     netip.Prefix  // full mode; zero means the /24 around ServerAddr
	Pool       *Pool         // full mode: the dynamic range
	Router     netip.Addr    // option 3 (full mode)
	DNS        []netip.Addr  // option 6 (full mode)
	Domain     string        // option 15 (full mode)
	LeaseTime  time.Duration // option 51; zero means one hour
	PiMenu     string        // option 43 menu text; "" means DefaultPiMenu
	Unknown    UnknownPolicy
	Inventory  Inventory // who is this MAC or serial; nil knows nobody
	// DefaultEFI is the EFI binary UEFI clients of unknown machines get
	// under UnknownDefault; "" picks one by architecture.
	DefaultEFI string
}

// Node is what the server needs to know of a machine its Inventory knows.
type Node struct {
	Name    string     // the node's name: lease records and events use it
	Address netip.Addr // static reservation in full mode; zero for none
	EFI     string     // EFI binary for UEFI clients; "" picks one by architecture
}

// Inventory answers "who is this machine?" for the DHCP server. The
// answers are a snapshot: Server.Update swaps the Inventory with the rest
// of the Settings on a config reload.
type Inventory interface {
	// NodeBySerial finds a node by Pi serial (8 lower-case hex digits).
	NodeBySerial(serial string) (Node, bool)
	// NodeByMAC finds a node by MAC address.
	NodeByMAC(mac net.HardwareAddr) (Node, bool)
	// NodeByAddr finds the node whose static reservation is addr.
	NodeByAddr(addr netip.Addr) (Node, bool)
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
		s.Unknown = UnknownIgnore
	}
	if s.Mode == "" {
		s.Mode = ModeProxy
	}
	return &s
}
