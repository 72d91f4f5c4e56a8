package resolve

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/racklet/racklet-boot/rack"
)

// Clients answers "who is at this address?" for requests that carry no
// node prefix. boot/server implements it over the DHCP server's lease table
// (memory, no store scan), then ARPTable, the kernel's neighbour table.
type Clients interface {
	MACForAddr(ctx context.Context, a netip.Addr) (net.HardwareAddr, bool)
}

// NodeClients is a Clients that also knows which configured node holds an
// address: the node a DHCP lease was made for (found by its Pi serial in
// option 97, or its MAC). A Pi's HTTP boot request carries neither serial
// nor MAC, and a node configured by serial alone has no MAC to match, so
// the resolver asks NodeForAddr first when Clients implements it.
type NodeClients interface {
	Clients
	NodeForAddr(ctx context.Context, a netip.Addr) (node string, ok bool)
}

// Resolver maps (client, requested name) to a boot file for TFTP and HTTP
// alike. It is safe for concurrent use; Update swaps the inventory
// atomically.
type Resolver struct {
	// Log receives one debug record per resolution; nil discards.
	Log *slog.Logger
	// Clients identifies clients by address when the name has no node
	// prefix; nil means only prefixed names identify a node.
	Clients Clients

	baseDir  string
	fat      *fatCache
	images   Images
	slots    Slots
	imageFAT imageFATs
	snap     atomic.Pointer[snapshot]
}

var _ Opener = (*Resolver)(nil)

// Options configures a Resolver at New. The zero value serves prefixed
// names only, resolves relative paths against the working directory, has no
// image source and discards logs.
type Options struct {
	// Log is Resolver.Log.
	Log *slog.Logger
	// Clients is Resolver.Clients.
	Clients Clients
	// BaseDir resolves relative dir and fat paths of boot sources.
	BaseDir string
	// Images is the source of verified images for boot.image nodes; without
	// it such nodes fail with ErrImageSource.
	Images Images
	// Slots says which image a boot.image node boots now (package ab
	// decides); nil serves the configured reference from slot "a".
	Slots Slots
}

// Slots answers, for a node that boots an OCI image, which image it boots
// now and from which A/B slot. The server implements it over package ab:
// the trial image while an attempt is under way, else the committed one.
type Slots interface {
	// BootImage returns the image reference (pinned to its digest) and
	// the slot ("a" or "b") node boots now; ok is false when there is no
	// decision for the node yet, and the configured reference is served.
	BootImage(node string) (ref, slot string, ok bool)
}

// New returns a resolver serving the nodes of inv (the server's one node
// index) and its config's boot sources.
func New(inv *inventory.Inventory, opts Options) *Resolver {
	r := &Resolver{Log: opts.Log, Clients: opts.Clients, baseDir: opts.BaseDir, images: opts.Images, slots: opts.Slots, fat: newFATCache()}
	r.Update(inv)
	return r
}

// Update replaces the inventory atomically: every Open that starts after
// Update returns sees inv; Opens already running finish with the old one.
func (r *Resolver) Update(inv *inventory.Inventory) {
	if inv == nil {
		inv = inventory.New(nil)
	}
	s := &snapshot{inv: inv, cfg: inv.Config(), loaded: time.Now().UTC().Truncate(time.Second)}
	r.snap.Store(s)
	keep := map[string]bool{}
	for _, b := range s.boots() {
		if b.FAT != "" {
			keep[r.sourcePath(b.FAT)] = true
		}
	}
	r.fat.retain(keep)
}

// snapshot is one inventory and the time it was loaded, per Update.
type snapshot struct {
	inv    *inventory.Inventory
	cfg    *rack.Config // inv.Config()
	loaded time.Time    // ModTime of generated files
}

var discardLog = slog.New(slog.DiscardHandler)

// boots lists every boot source the config names.
func (s *snapshot) boots() []rack.Boot {
	out := make([]rack.Boot, 0, len(s.cfg.Nodes)+1)
	for _, n := range s.cfg.Nodes {
		out = append(out, n.Boot)
	}
	if s.cfg.Default != nil {
		out = append(out, *s.cfg.Default)
	}
	return out
}

// logger returns r.Log or a logger that discards.
func (r *Resolver) logger() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return discardLog
}

// sourcePath makes a configured path absolute against the base directory.
func (r *Resolver) sourcePath(p string) string {
	if r.baseDir == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.baseDir, p)
}
