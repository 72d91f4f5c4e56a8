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
}

// New returns a resolver serving the nodes of inv (the server's one node
// index) and its config's boot sources.
func New(inv *inventory.Inventory, opts Options) *Resolver {
	r := &Resolver{Log: opts.Log, Clients: opts.Clients, baseDir: opts.BaseDir, images: opts.Images, fat: newFATCache()}
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
