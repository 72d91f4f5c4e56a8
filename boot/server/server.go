package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/bmc/consolelog"
	"github.com/racklet/racklet-boot/boot/adminauth"
	"github.com/racklet/racklet-boot/boot/dhcp"
	httpboot "github.com/racklet/racklet-boot/boot/http"
	"github.com/racklet/racklet-boot/boot/ra"
	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/boot/tftp"
	"github.com/racklet/racklet-boot/enrol"
	"github.com/racklet/racklet-boot/imagestore"
	"github.com/racklet/racklet-boot/internal/adminclient"
	"github.com/racklet/racklet-boot/inventory"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/serverkey"
	"github.com/racklet/racklet-boot/store"
)

// Names under the data directory.
const (
	StateFile = store.DefaultFileName // leases, nodes, boot events (bbolt)
	ImagesDir = "images"              // the verified image cache
	AttestDir = "attest"              // HAT enrollments and node secrets
)

// Options tune a Server. The zero value serves the config as it says, logs
// nothing and keeps its metrics in a registry of its own.
type Options struct {
	// DataDir holds the state; "" means the config's server.dataDir.
	DataDir string
	// TFTPAddr and HTTPAddr are listen addresses; "" means
	// "<server.address>:<server.tftpPort>" and "<server.address>:<server.httpPort>":
	// racklet-boot never listens on every interface by default.
	TFTPAddr string
	HTTPAddr string
	// ConfigFile, when set, is watched: Run reloads the config from it when
	// the file changes and on SIGHUP (see Watch).
	ConfigFile string
	// Logger receives the server's logs, each component's with a
	// "component" attribute; nil discards.
	Logger *slog.Logger
	// Registry receives the server's metrics and is served on /metrics;
	// nil makes one with the Go and process collectors.
	Registry *prometheus.Registry
	// Neighbours names clients by address when DHCP has no lease for them
	// (proxy mode: the router leased the address); nil reads the kernel's
	// ARP table (resolve.ARPTable) where Network runs.
	Neighbours resolve.Clients
	// BMCAddr is where HATs connect as board-management controllers; ""
	// means "<server.address>:<server.bmcPort>".
	BMCAddr string
	// AdminAuth, when set, replaces the operator credential check that
	// wraps every operator route (routes.go). nil is boot/adminauth with
	// the token in the data directory (generated on first start) and the
	// data directory's unix socket.
	AdminAuth func(http.Handler) http.Handler
	// AdminSocket is the operator API's unix socket; "" means admin.sock in
	// the data directory, "-" none.
	AdminSocket string
	// PowerCycle, when set, power-cycles a node for A/B (a trial's attempt,
	// a rollback); nil power-cycles it through its HAT (the BMC).
	PowerCycle func(ctx context.Context, node string) error
	// Network runs fn where the server's network is: every socket the
	// server opens (listeners, TFTP transfer sockets) and the ARP table it
	// reads. nil runs fn on the calling goroutine, in the process's own
	// namespace; netlab.Thread.Do puts the server in a network namespace.
	Network func(fn func() error) error
}

// Server is one racklet-boot: DHCP, TFTP and HTTP for one rack LAN. Make it
// with New, serve with Run, swap configs with Reload.
type Server struct {
	opts    Options
	log     *slog.Logger
	dataDir string

	inv      *inventory.Live
	clients  *clientLookup
	state    *store.Bolt
	images   *imagestore.Store
	booter   *imagestore.Booter
	resolver *resolve.Resolver
	dhcp     *dhcp.Server
	tftp     *tftp.Server
	http     *httpboot.Server
	verifier *verifier.Verifier
	events   *eventTap
	bmc      *bmc.Server
	console  *consolelog.Store
	enrol    *enrol.Book
	auth     *adminauth.Auth
	signer   *serverkey.Signer
	ab       *abWiring // A/B slots and rollouts (package ab)
	hub      hub
	base     *rack.Config // the config as its file says, without approved nodes
	metrics  *metrics
	kube     *kubeWatch

	reloadMu sync.Mutex   // serialises Reload
	started  *rack.Config // the config Run's sockets were opened for
	addrs    Addrs        // where Run listens
	prefetch chan struct{}
	ready    chan struct{} // closed once Run listens and has applied the config
	stopping chan struct{} // closed when Run's context ends: long-lived streams end
	closeMu  sync.Mutex
	closed   bool
}

// New builds a server for cfg (a validated config): it opens the state
// database and the image store in the data directory and wires every
// component; nothing listens until Run. Close releases the state of a
// server that is never run.
func New(cfg *rack.Config, opts Options) (*Server, error) {
	if cfg == nil {
		return nil, errors.New("server: no rack config")
	}
	s := &Server{opts: opts, log: opts.Logger, base: cfg, prefetch: make(chan struct{}, 1), ready: make(chan struct{}), stopping: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.dataDir = opts.DataDir
	if s.dataDir == "" {
		s.dataDir = cfg.Server.DataDir
	}
	if err := os.MkdirAll(s.dataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	merged, err := s.withOverlay(cfg)
	if err != nil {
		return nil, err
	}
	s.inv = inventory.NewLive(merged)
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if s.state, err = store.OpenBolt(filepath.Join(s.dataDir, StateFile), store.BoltOptions{}); err != nil {
		return nil, err
	}
	s.metrics = newMetrics(reg)
	if err := s.build(cfg, reg); err != nil {
		s.state.Close()
		return nil, err
	}
	mustRegister(reg, s.componentCollectors()...)
	return s, nil
}

// build makes the components around the open state store.
func (s *Server) build(cfg *rack.Config, reg *prometheus.Registry) error {
	imgOpts := imagestore.OptionsFor(cfg)
	imgOpts.Log = s.component("images")
	var err error
	if s.images, err = imagestore.Open(filepath.Join(s.dataDir, ImagesDir), imgOpts); err != nil {
		return err
	}
	s.events = &eventTap{Store: s.state, notify: s.hub.node}
	s.booter = &imagestore.Booter{Store: s.images, Config: func() *rack.Config { return s.inv.Load().Config() }}
	if err := s.openAB(context.Background(), reg); err != nil {
		return err
	}

	s.dhcp = dhcp.New(dhcpSettings(s.inv.Load()), dhcp.Options{Log: s.component("dhcp"), Leases: s.state, Events: s.events, Metrics: dhcp.NewMetrics(reg)})
	neighbours := s.opts.Neighbours
	if neighbours == nil {
		neighbours = arpIn{network: s.network, table: resolve.ARPTable{Path: "/proc/thread-self/net/arp"}}
	}
	s.clients = &clientLookup{leases: s.dhcp, neighbours: neighbours, inv: s.inv}
	s.resolver = resolve.New(s.inv.Load(), resolve.Options{
		Log:     s.component("resolve"),
		Clients: s.clients,
		Images:  countedImages{ImageSource(s.booter), s.metrics},
		Slots:   s.ab,
	})
	s.tftp = &tftp.Server{Files: s.resolver, Log: s.component("tftp"), Events: s.events, Metrics: tftp.NewMetrics(reg), Network: s.network}

	enr, sec, err := verifier.OpenDataDir(filepath.Join(s.dataDir, AttestDir))
	if err != nil {
		return err
	}
	kube := &kubeSecrets{base: sec, inv: s.inv, log: s.component("kubernetes")}
	s.kube = &kubeWatch{sec: kube, events: s.events}
	if s.auth, _, err = adminauth.Open(s.dataDir, s.component("admin")); err != nil {
		return err
	}
	if s.signer, err = serverkey.Open(s.dataDir); err != nil {
		return err
	}
	s.verifier = &verifier.Verifier{
		Enrollments: enr,
		Secrets:     kube,
		Events:      s.events,
		Expected:    &expectedBoot{inv: s.inv, res: s.resolver, images: s.booter, slots: s.ab},
		Known: func(_ context.Context, node string) bool {
			_, ok := s.inv.Load().ByName(node)
			return ok
		},
		NodeAddr: s.nodeAddr,
		Logger:   s.component("attest"),
		Outcome:  func(o string) { s.metrics.attest.WithLabelValues(o).Inc() },
	}
	s.verifier.SetEnrolment(verifier.Enrolment(cfg.Enrolment))
	if err := s.buildBMC(); err != nil {
		return err
	}
	s.verifier.Claims = claimBook{s.enrol}
	s.events.ref = s.bmc.ConsoleRef
	s.http = &httpboot.Server{
		Files:    s.resolver,
		Nodes:    &nodeReader{inv: s.inv, state: s.state, kube: s.kube},
		Registry: reg,
		Log:      s.component("http"),
		Events:   s.events,
		Operator: s.operator,
		Mounts:   s.mounts(),
	}
	return nil
}

func (s *Server) component(name string) *slog.Logger { return s.log.With("component", name) }

// network runs fn where Options.Network says.
func (s *Server) network(fn func() error) error {
	if s.opts.Network == nil {
		return fn()
	}
	return s.opts.Network(fn)
}

// arpIn reads an ARP table where the server's network is.
type arpIn struct {
	network func(func() error) error
	table   resolve.ARPTable
}

func (a arpIn) MACForAddr(ctx context.Context, addr netip.Addr) (mac net.HardwareAddr, ok bool) {
	_ = a.network(func() error {
		mac, ok = a.table.MACForAddr(ctx, addr)
		return nil
	})
	return mac, ok
}

// nodeAt answers the node API's "which node is at this address?".
func (s *Server) nodeAt(ctx context.Context, a netip.Addr) (string, bool, error) {
	name, ok := s.clients.NodeForAddr(ctx, a)
	return name, ok, nil
}

// Config returns the config being served.
func (s *Server) Config() *rack.Config { return s.inv.Load().Config() }

// Handler is the server's HTTP handler (boot files, node API, attestation,
// metrics, and the operator routes behind their check), for callers that
// serve it themselves.
func (s *Server) Handler() http.Handler { return s.http.Handler() }

// AdminToken is the operator token (the data directory's admin.token),
// for callers that talk to this server's operator API from the same
// process (tests, lab).
func (s *Server) AdminToken() string { return s.auth.Token() }

// ServerKey is the public key the node agent checks this server's answers
// with ("ed25519:<base64>", also in the data directory's server.pub): what
// racklet-image build --server-key puts into an image.
func (s *Server) ServerKey() string { return s.signer.PublicText() }

// AdminSocket is the operator API's unix socket, "" for none.
func (s *Server) AdminSocket() string {
	switch s.opts.AdminSocket {
	case "-":
		return ""
	case "":
		return filepath.Join(s.dataDir, adminclient.SocketFile)
	}
	return s.opts.AdminSocket
}

// listeners are the sockets of one Run, opened before any is served.
type listeners struct {
	dhcp  []net.PacketConn
	ra    *ra.Conn // nil: router advertisements off, or unavailable
	tftp  net.PacketConn
	http  net.Listener
	bmc   net.Listener
	admin *adminauth.Socket
}

func (l *listeners) close() {
	for _, c := range l.dhcp {
		c.Close()
	}
	if l.tftp != nil {
		l.tftp.Close()
	}
	if l.ra != nil {
		l.ra.Close()
	}
	if l.http != nil {
		l.http.Close()
	}
	if l.bmc != nil {
		l.bmc.Close()
	}
	if l.admin != nil {
		l.admin.Close()
	}
}

// listen opens every socket on the calling goroutine, so a caller that has
// moved its thread into a network namespace gets them all there.
func (s *Server) listen(ctx context.Context, cfg *rack.Config) (*listeners, string, string, error) {
	l := &listeners{}
	tftpAddr, httpAddr := s.opts.TFTPAddr, s.opts.HTTPAddr
	if tftpAddr == "" {
		tftpAddr = hostPort(cfg, cfg.Server.TFTPPort)
	}
	if httpAddr == "" {
		httpAddr = hostPort(cfg, cfg.Server.HTTPPort)
	}
	var lc net.ListenConfig
	var err error
	if cfg.DHCP.Mode != rack.DHCPOff {
		for _, port := range []int{dhcp.ServerPort, dhcp.PXEPort} {
			c, err := dhcp.Listen(ctx, cfg.Server.Interface, port)
			if err != nil {
				l.close()
				return nil, "", "", err
			}
			l.dhcp = append(l.dhcp, c)
		}
	}
	if cfg.DHCP.Mode != rack.DHCPOff && cfg.Server.AdvertiseRouter() {
		// An optimisation for iPXE (it waits ~13 s for IPv6 otherwise): a
		// failure is a warning, not a stop.
		if l.ra, err = s.routerAdvertiser(cfg).Listen(); err != nil {
			s.log.Warn("not answering IPv6 router solicitations; iPXE clients wait ~13 s for IPv6", "err", err)
		}
	}
	if l.tftp, err = lc.ListenPacket(ctx, "udp", tftpAddr); err != nil {
		l.close()
		return nil, "", "", fmt.Errorf("listen for tftp on %s: %w", tftpAddr, err)
	}
	if l.http, err = lc.Listen(ctx, "tcp", httpAddr); err != nil {
		l.close()
		return nil, "", "", fmt.Errorf("listen for http on %s: %w", httpAddr, err)
	}
	bmcAddr := s.opts.BMCAddr
	if bmcAddr == "" {
		bmcAddr = hostPort(cfg, cfg.Server.BMCPort)
	}
	if l.bmc, err = lc.Listen(ctx, "tcp", bmcAddr); err != nil {
		l.close()
		return nil, "", "", fmt.Errorf("listen for HATs (board management) on %s: %w", bmcAddr, err)
	}
	if path := s.AdminSocket(); path != "" {
		if l.admin, err = adminauth.ListenSocket(ctx, path, s.component("admin")); err != nil {
			l.close()
			return nil, "", "", err
		}
	}
	return l, l.tftp.LocalAddr().String(), l.http.Addr().String(), nil
}

// hostPort is server.address with port: where TFTP, HTTP and the BMC
// listener bind (DHCP binds the interface). Binding the address, not every
// interface, keeps them off other networks the host is on.
func hostPort(cfg *rack.Config, port int) string {
	return net.JoinHostPort(cfg.Server.Address.String(), strconv.Itoa(port))
}

// Run opens every socket (on the calling goroutine), enrolls the config's
// HAT keys, records its nodes, then serves DHCP, TFTP and HTTP, fetches the
// assigned images and, with Options.ConfigFile, watches the config, until
// ctx ends. It returns nil then, after closing the state; a failing
// component ends the others and its error is returned. Run once.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	cfg := s.inv.Load().Config()
	var l *listeners
	var tftpAddr, httpAddr string
	err := s.network(func() (err error) {
		l, tftpAddr, httpAddr, err = s.listen(ctx, cfg)
		return err
	})
	if err != nil {
		return err
	}
	s.reloadMu.Lock()
	s.started = cfg
	s.addrs = Addrs{TFTP: tftpAddr, HTTP: httpAddr, BMC: l.bmc.Addr().String()}
	s.reloadMu.Unlock()
	if err := s.apply(ctx, s.inv.Load()); err != nil {
		s.metrics.applied(len(cfg.Nodes), false, err)
		l.close()
		return err
	}
	s.metrics.applied(len(cfg.Nodes), false, nil)
	close(s.ready)
	s.log.Info("racklet-boot serving", "config", s.opts.ConfigFile, "dataDir", s.dataDir, "interface", cfg.Server.Interface, "address", cfg.Server.Address,
		"dhcp", cfg.DHCP.Mode, "nodes", len(cfg.Nodes), "tftp", tftpAddr, "http", httpAddr)
	g, ctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(ctx, func() { close(s.stopping) })
	defer stop()
	for _, c := range l.dhcp {
		g.Go(func() error { return s.dhcp.Serve(ctx, c) })
	}
	g.Go(func() error { return s.tftp.Serve(ctx, l.tftp) })
	if l.ra != nil {
		g.Go(func() error { return s.routerAdvertiser(cfg).Serve(ctx, l.ra) })
	}
	g.Go(func() error { return s.http.Serve(ctx, l.http) })
	g.Go(func() error { return s.bmc.Serve(ctx, l.bmc) })
	if l.admin != nil {
		g.Go(func() error { return adminauth.ServeSocket(ctx, l.admin, s.http.Handler()) })
	}
	g.Go(func() error { s.prefetchLoop(ctx); return nil })
	g.Go(func() error { s.ab.run(ctx); return nil })
	g.Go(func() error { s.kube.run(ctx); return nil })
	if s.opts.ConfigFile != "" {
		g.Go(func() error {
			return watch(ctx, s.opts.ConfigFile, s.component("config"), func(next *rack.Config) {
				if err := s.Reload(ctx, next); err != nil {
					s.log.Error("apply the reloaded config", "err", err)
				}
			}, s.metrics.rejected)
		})
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	s.log.Info("racklet-boot stopped")
	return err
}

// Addrs are the addresses a running server listens on.
type Addrs struct {
	TFTP, HTTP, BMC string
}

// Addrs returns where Run listens; valid once Ready is closed.
func (s *Server) Addrs() Addrs {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return s.addrs
}

// routerAdvertiser answers router solicitations on the boot interface.
func (s *Server) routerAdvertiser(cfg *rack.Config) *ra.Responder {
	return &ra.Responder{Interface: cfg.Server.Interface, Log: s.component("ra")}
}

// Ready is closed once Run has opened every socket and applied the config:
// from then on clients are served.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Close releases the state database. Run calls it when it returns.
func (s *Server) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.state.Close()
}

// Reload serves cfg from now on: one atomic swap of the node index, then
// DHCP, the resolver and attestation follow it, its HAT keys are enrolled,
// its nodes recorded, and its images fetched in the background. Listening
// sockets (interface, ports, data directory, DHCP on or off) change only
// with a restart: Reload logs which changed and applies the rest.
func (s *Server) Reload(ctx context.Context, cfg *rack.Config) error {
	if cfg == nil {
		return errors.New("reload: no rack config")
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	base := cfg
	cfg, err := s.withOverlay(base)
	if err != nil {
		return err
	}
	s.base = base
	if s.started != nil {
		if msg := restartNeeded(s.started, cfg); msg != "" {
			s.log.Warn("config change needs a restart to take effect; the rest is applied now", "change", msg)
		}
	}
	inv := inventory.New(cfg)
	s.inv.Store(inv)
	s.dhcp.Update(dhcpSettings(inv))
	s.resolver.Update(inv)
	s.verifier.SetEnrolment(verifier.Enrolment(cfg.Enrolment))
	err = s.apply(ctx, inv)
	s.metrics.applied(len(cfg.Nodes), true, err)
	s.bmc.Rescan()
	s.hub.publish("*")
	s.log.Info("config reloaded", "nodes", len(cfg.Nodes), "dhcp", cfg.DHCP.Mode)
	return err
}

// apply does the I/O a config asks for: HAT keys, node records, and a
// request to fetch its images.
func (s *Server) apply(ctx context.Context, inv *inventory.Inventory) error {
	var errs []error
	if err := s.verifier.Preprovision(ctx, inv.HATKeys()); err != nil {
		errs = append(errs, fmt.Errorf("enroll the HAT keys of the config: %w", err))
	}
	if err := syncNodes(ctx, s.state, inv); err != nil {
		errs = append(errs, fmt.Errorf("record the nodes of the config: %w", err))
	}
	select {
	case s.prefetch <- struct{}{}:
	default: // one is pending already
	}
	return errors.Join(errs...)
}

// restartNeeded names the changes a running server cannot apply in place:
// the sockets it listens on.
func restartNeeded(old, next *rack.Config) string {
	switch {
	case old.Server.Interface != next.Server.Interface:
		return "server.interface"
	case old.Server.HTTPPort != next.Server.HTTPPort:
		return "server.httpPort"
	case old.Server.TFTPPort != next.Server.TFTPPort:
		return "server.tftpPort"
	case old.Server.BMCPort != next.Server.BMCPort:
		return "server.bmcPort"
	case old.Server.DataDir != next.Server.DataDir:
		return "server.dataDir"
	case (old.DHCP.Mode == rack.DHCPOff) != (next.DHCP.Mode == rack.DHCPOff):
		return "dhcp.mode on/off"
	case old.Server.AdvertiseRouter() != next.Server.AdvertiseRouter():
		return "server.routerAdvertisements"
	}
	return ""
}
