// Package httpboot is racklet-boot's HTTP server: boot files for nodes (with
// Range, ETag and HEAD, as UEFI HTTP boot and the Pi EEPROM need), iPXE
// scripts, the Raspberry Pi HTTP boot paths, a read-only JSON API over node
// state, health and Prometheus metrics.
//
// Routes:
//
//	GET|HEAD /boot/{name...}           resolver Name = name (e.g. "dc-a6-32-00-00-01/kernel8.img")
//	GET|HEAD /ipxe/{mac}/boot.ipxe     resolver Name = "{mac}/boot.ipxe"
//	GET|HEAD /{anything}/boot.img|sig  resolver Name = "boot.img" / "boot.sig", chosen by client address
//	GET /api/v1/nodes                  all nodes, each with its lease if any      (Server.Operator)
//	GET /api/v1/nodes/{key}            one node                                   (Server.Operator)
//	GET /api/v1/nodes/{key}/events     its boot events, oldest first (?limit=N keeps the newest N) (Server.Operator)
//	GET /                              a page naming the server, its version and these routes
//	GET /healthz                       "ok"
//	GET /metrics                       Prometheus exposition of Server.Registry
//
// Paths are checked before routing: a dot segment, an encoded slash, a
// backslash, a NUL, a control character or bytes that are not UTF-8 get 400
// and never reach the resolver or a mount. File bodies go through http.ServeContent, so an *os.File from a
// directory source is sent with sendfile. The inventory routes serve operators and are wrapped in
// Server.Operator; a request body must arrive within BodyTimeout; Patterns lists every route.
package httpboot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/store"
)

// NodeReader is what the JSON API reads from the node store. store.Store
// satisfies it.
type NodeReader interface {
	Nodes(ctx context.Context) ([]store.Node, error)
	Node(ctx context.Context, key string) (store.Node, bool, error)
	Events(ctx context.Context, node string, limit int) ([]store.Event, error)
	Leases(ctx context.Context) ([]store.Lease, error)
}

// EventSink receives an "http.get" event for every boot file sent to a known
// node. store.Store satisfies it.
type EventSink interface {
	AddEvent(ctx context.Context, e store.Event) error
}

var (
	_ NodeReader = store.Store(nil)
	_ EventSink  = store.Store(nil)
)

// Timeouts used by Serve. There is deliberately no write timeout: a Pi or a
// UEFI client pulling a 1 GiB image over a slow or busy link must not be cut
// off mid-transfer; idle and header timeouts bound what a silent client
// holds, and the connection caps (MaxConns, MaxConnsPerClient) bound how
// many connections slow clients can hold at all.
const (
	// ReadHeaderTimeout bounds how long a client may take to send its headers.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes keep-alive connections that sit idle this long.
	IdleTimeout = 2 * time.Minute
	// DefaultBodyTimeout bounds reading a request body (Server.BodyTimeout).
	DefaultBodyTimeout = 10 * time.Second
	// DefaultShutdownTimeout is how long Serve lets in-flight requests finish
	// after its context ends, when Server.ShutdownTimeout is zero.
	DefaultShutdownTimeout = 30 * time.Second
)

// Server serves boot files, the node API, health and metrics over HTTP.
// Set the fields before the first call to Handler or Serve; do not copy a
// Server after that.
type Server struct {
	// Files resolves boot file names for a client. Required for the boot routes
	// (without it they answer 503).
	Files resolve.Opener
	// Nodes backs the JSON API; nil makes the API answer 503.
	Nodes NodeReader
	// Registry is served on /metrics and receives the server's metrics; nil
	// uses a private registry with Go and process collectors.
	Registry *prometheus.Registry
	// Log receives one line per request and the server's errors; nil discards.
	Log *slog.Logger
	// Events receives an http.get event for each boot file sent to a known
	// node (GET, not HEAD); nil records nothing.
	Events EventSink
	// Mounts adds handlers under extra ServeMux patterns (e.g.
	// "/api/v1/attest/"). A pattern that conflicts with a built-in route
	// panics in Handler, as http.ServeMux does.
	Mounts map[string]http.Handler
	// ShutdownTimeout is how long Serve waits for in-flight requests once its
	// context ends before closing their connections; 0 means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// HeaderTimeout bounds how long a client may take to send a request's
	// headers (a slowloris holds a connection no longer); 0 means
	// ReadHeaderTimeout.
	HeaderTimeout time.Duration
	// Operator wraps every route that serves operators rather than nodes
	// (the node inventory API under /api/v1/nodes): the operator credential
	// check. nil leaves them open, for embedders that authenticate in front;
	// racklet-boot (boot/server) always sets it.
	Operator func(http.Handler) http.Handler
	// BodyTimeout bounds how long a client may take to send a request body
	// (a POST trickling in after complete headers holds its connection no
	// longer); 0 means DefaultBodyTimeout.
	BodyTimeout time.Duration
	// MaxConns bounds the connections open at once and MaxConnsPerClient
	// those from one client address; a connection past either is closed as
	// it arrives (and counted in MetricConnsRefused). 0 means
	// DefaultMaxConns and DefaultMaxConnsPerClient.
	MaxConns, MaxConnsPerClient int

	once     sync.Once
	handler  http.Handler
	metrics  *metrics
	patterns []string
}

// Handler returns the server's complete HTTP handler: path checks, request
// logging and metrics around all routes. It is built once; later calls
// return the same handler.
func (s *Server) Handler() http.Handler {
	s.once.Do(func() { s.handler = s.build() })
	return s.handler
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Server) build() http.Handler {
	log := s.logger()
	reg := s.Registry
	if reg == nil {
		reg = newPrivateRegistry()
	}
	m := newMetrics(reg)
	s.metrics = m

	operator := s.Operator
	if operator == nil {
		operator = func(h http.Handler) http.Handler { return h }
	}
	mux := http.NewServeMux()
	handle := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		s.patterns = append(s.patterns, pattern)
	}
	handle("GET /boot/{name...}", routed("boot", http.HandlerFunc(s.serveBoot)))
	handle("GET /ipxe/{mac}/boot.ipxe", routed("ipxe", http.HandlerFunc(s.serveIPXE)))
	handle("GET /api/v1/nodes", routed("api", operator(http.HandlerFunc(s.listNodes))))
	handle("GET /api/v1/nodes/{key}", routed("api", operator(http.HandlerFunc(s.getNode))))
	handle("GET /api/v1/nodes/{key}/events", routed("api", operator(http.HandlerFunc(s.listEvents))))
	handle("GET /healthz", routed("healthz", http.HandlerFunc(serveHealth)))
	handle("GET /{$}", routed("index", http.HandlerFunc(s.serveIndex)))
	handle("GET /metrics", routed("metrics", m.exposition(reg)))
	handle("/", http.HandlerFunc(s.serveFallback))
	mounts := slices.Sorted(maps.Keys(s.Mounts))
	for _, pattern := range mounts {
		handle(pattern, routed("mount", s.Mounts[pattern]))
	}
	return s.observe(log, m, checkPath(s.bodyDeadline(mux)))
}

// Patterns lists every ServeMux pattern of the handler (built-in routes and
// Mounts), in the order registered: what a test walks to prove each route
// is either a node's or behind the operator check.
func (s *Server) Patterns() []string {
	s.Handler()
	return slices.Clone(s.patterns)
}

// bodyDeadline gives a request that has a body BodyTimeout to send it: a
// read deadline on the connection, lifted when the handler returns (the
// next request's header timeout replaces it).
func (s *Server) bodyDeadline(h http.Handler) http.Handler {
	d := cmp.Or(s.BodyTimeout, DefaultBodyTimeout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				defer rc.SetReadDeadline(time.Time{})
			}
		}
		h.ServeHTTP(w, r)
	})
}

// routed labels a request with its route for logs and metrics.
func routed(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if info := infoFrom(r.Context()); info != nil {
			info.route = route
		}
		h.ServeHTTP(w, r)
	})
}

func serveHealth(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

// ListenAndServe listens on addr (host:port) and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for http on %s: %w", addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves HTTP on ln until ctx ends, then stops accepting, lets
// in-flight requests finish for up to ShutdownTimeout, closes the rest and
// returns nil. It closes ln. Any other failure to serve is returned.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	handler := s.Handler()
	header := cmp.Or(s.HeaderTimeout, ReadHeaderTimeout)
	ln = &connLimiter{Listener: ln, max: cmp.Or(s.MaxConns, DefaultMaxConns),
		perClient: cmp.Or(s.MaxConnsPerClient, DefaultMaxConnsPerClient),
		refused:   s.metrics.refused, log: s.logger(), byAddr: map[netip.Addr]int{}}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: header,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelDebug),
		// Requests keep ctx's values but not its cancellation: shutdown is
		// graceful, downloads in flight are allowed to finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger().Info("http server listening", "listen", ln.Addr().String())

	select {
	case err := <-errc:
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	grace := s.ShutdownTimeout
	if grace <= 0 {
		grace = DefaultShutdownTimeout
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.logger().Warn("http shutdown timed out; closing remaining connections", "grace", grace, "err", err)
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	return nil
}
