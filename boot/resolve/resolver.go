package resolve

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/racklet/racklet-boot/rack"
)

// Clients answers "who is at this address?" for requests that carry no
// node prefix. The server implements it over DHCP leases and observations;
// ARPTable implements it over the kernel's neighbour table.
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
// alike. It is safe for concurrent use; Update swaps the config atomically.
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

// Option configures a Resolver at New.
type Option func(*Resolver)

// WithLogger sets Resolver.Log. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(r *Resolver) { r.Log = l } }

// WithClients sets Resolver.Clients. Default: none (prefixed names only).
func WithClients(c Clients) Option { return func(r *Resolver) { r.Clients = c } }

// WithBaseDir resolves relative dir and fat paths of boot sources against
// dir. Default: the process's working directory.
func WithBaseDir(dir string) Option { return func(r *Resolver) { r.baseDir = dir } }

// New returns a resolver serving cfg. cfg is not modified and must not be
// modified afterwards; pass a new one to Update instead.
func New(cfg *rack.Config, opts ...Option) *Resolver {
	r := &Resolver{fat: newFATCache()}
	for _, o := range opts {
		o(r)
	}
	r.Update(cfg)
	return r
}

// Update replaces the config atomically: every Open that starts after Update
// returns sees cfg; Opens already running finish with the old one.
func (r *Resolver) Update(cfg *rack.Config) {
	s := newSnapshot(cfg, time.Now())
	r.snap.Store(s)
	keep := map[string]bool{}
	for _, b := range s.boots() {
		if b.FAT != "" {
			keep[r.sourcePath(b.FAT)] = true
		}
	}
	r.fat.retain(keep)
}

// snapshot is one config with its lookup indexes, built once per Update.
type snapshot struct {
	cfg      *rack.Config
	loaded   time.Time // ModTime of generated files
	bySerial map[string]*rack.Node
	byMAC    map[string]*rack.Node // key: lower-case colon form
	byName   map[string]*rack.Node
}

func newSnapshot(cfg *rack.Config, now time.Time) *snapshot {
	if cfg == nil {
		cfg = &rack.Config{}
	}
	s := &snapshot{
		cfg:      cfg,
		loaded:   now.UTC().Truncate(time.Second),
		bySerial: make(map[string]*rack.Node, len(cfg.Nodes)),
		byMAC:    make(map[string]*rack.Node, len(cfg.Nodes)),
		byName:   make(map[string]*rack.Node, len(cfg.Nodes)),
	}
	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		s.byName[n.Name] = n
		if n.Serial != "" {
			s.bySerial[strings.ToLower(n.Serial)] = n
		}
		if len(n.MAC) > 0 {
			s.byMAC[n.MAC.String()] = n
		}
	}
	return s
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
