package bmc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/bmc/consolelog"
	"github.com/racklet/racklet-boot/store"
)

// Directory is what the server needs to know about the rack: which node a
// HAT key belongs to, and the config's power for a node. boot/server
// adapts the live inventory and the attestation enrolments to it.
type Directory interface {
	// NodeForKey names the node whose HAT has key (hatlink.EncodeKey
	// form): the config's hatKey, or an approved enrolment.
	NodeForKey(ctx context.Context, key string) (node string, ok bool)
	// ConfigPower is the config's power for node; ok is false when the
	// config does not name it.
	ConfigPower(node string) (on bool, ok bool)
}

// EventSink records an event in a node's timeline (store.Store satisfies it).
type EventSink interface {
	AddEvent(ctx context.Context, e store.Event) error
}

// Discovery is a HAT that proved its key but belongs to no node: a new
// machine for an operator to approve (zero-touch enrolment).
type Discovery struct {
	Key      string    `json:"key"`
	Serial   string    `json:"serial"`
	Firmware uint32    `json:"firmware"`
	Remote   string    `json:"remote"`
	Seen     time.Time `json:"seen"`
}

// Options configure a Server. Directory and Events are required.
type Options struct {
	Directory Directory
	Events    EventSink
	// Console keeps the consoles; nil: consoles are not read.
	Console *consolelog.Store
	// Discovered is told about every HAT that belongs to no node.
	Discovered func(ctx context.Context, d Discovery)
	// Changed is called after a node's board-management status changed
	// (connected, power, slot): the dashboard's live updates.
	Changed func(node string)
	// PowerInterval is how often each node's power is checked against
	// what is wanted (default 2 s); ConsoleInterval how often its console
	// is read (default 250 ms).
	PowerInterval   time.Duration
	ConsoleInterval time.Duration
	// Timeout bounds one hatlink attempt (default 2 s).
	Timeout time.Duration
	Log     *slog.Logger
}

// Server manages nodes through their HATs. Make it with New.
type Server struct {
	opts    Options
	log     *slog.Logger
	intents *intentFile

	mu       sync.Mutex
	sessions map[string]*session // by node
	unknown  map[*session]struct{}
}

// IntentsFile is the name of the operators' power requests in the directory given to New.
const IntentsFile = "power.json"

// New makes a server keeping its state (operators' power requests) in dir.
func New(dir string, opts Options) (*Server, error) {
	if opts.Directory == nil || opts.Events == nil {
		return nil, errors.New("bmc: a Directory and an EventSink are required")
	}
	if opts.PowerInterval <= 0 {
		opts.PowerInterval = 2 * time.Second
	}
	if opts.ConsoleInterval <= 0 {
		opts.ConsoleInterval = 250 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	in, err := openIntents(filepath.Join(dir, IntentsFile))
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, log: log, intents: in, sessions: map[string]*session{}, unknown: map[*session]struct{}{}}, nil
}

// Serve accepts HAT connections on ln until ctx ends, then closes them and
// returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	s.log.Info("board-management listener ready", "listen", ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("accept HAT connection: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.ServeConn(ctx, c, c.RemoteAddr().String())
		}()
	}
}

// ServeConn manages the HAT at the other end of rw (a socket, or a serial
// line the caller opened) until the link fails or ctx ends; it closes rw.
func (s *Server) ServeConn(ctx context.Context, rw io.ReadWriteCloser, remote string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { rw.Close() })
	defer stop()
	sess, err := s.open(ctx, rw, remote)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("board-management connection refused", "ip", remote, "err", err)
		}
		rw.Close()
		return
	}
	defer sess.link.Close()
	for ctx.Err() == nil {
		node, ok := s.opts.Directory.NodeForKey(ctx, sess.key)
		if !ok {
			if err := s.waitApproval(ctx, sess); err != nil {
				s.logEnd(ctx, sess, "", err)
				return
			}
			continue
		}
		err := s.manage(ctx, sess, node)
		s.logEnd(ctx, sess, node, err)
		if !errors.Is(err, errNotNode) {
			return
		}
	}
}

func (s *Server) logEnd(ctx context.Context, sess *session, node string, err error) {
	if ctx.Err() != nil {
		return
	}
	s.log.Info("board-management link ended", "node", node, "serial", sess.serial, "ip", sess.remote, "err", err)
}

// waitApproval reports an unknown HAT and keeps its link alive until an
// approval (Rescan) or a failure.
func (s *Server) waitApproval(ctx context.Context, sess *session) error {
	s.mu.Lock()
	s.unknown[sess] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.unknown, sess)
		s.mu.Unlock()
	}()
	d := Discovery{Key: sess.key, Serial: sess.serial, Firmware: sess.firmware, Remote: sess.remote, Seen: time.Now().UTC()}
	s.log.Info("unknown HAT connected: awaiting approval", "serial", sess.serial, "key", sess.key, "ip", sess.remote)
	if s.opts.Discovered != nil {
		s.opts.Discovered(ctx, d)
	}
	keepalive := time.NewTicker(5 * s.opts.PowerInterval)
	defer keepalive.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sess.wake:
			return nil
		case <-keepalive.C:
			if _, err := sess.powerState(ctx); err != nil {
				return err
			}
		}
	}
}

// Rescan makes every link re-read the directory now: after a config
// reload or an approval, a HAT that was unknown may now be a node, and a
// node's wanted power may have changed. Call it on every config reload:
// it also drops the operators' power requests the config overtook.
func (s *Server) Rescan() {
	if err := s.intents.prune(s.opts.Directory.ConfigPower); err != nil {
		s.log.Warn("forget power requests the config overtook", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.unknown {
		sess.nudge()
	}
	for _, sess := range s.sessions {
		sess.nudge()
	}
}

func (s *Server) changed(node string) {
	if s.opts.Changed != nil && node != "" {
		s.opts.Changed(node)
	}
}

func (s *Server) event(ctx context.Context, node, typ, detail string, ref *store.ConsoleRef) {
	e := store.Event{Time: time.Now().UTC(), Node: node, Type: typ, Detail: detail, Console: ref}
	if err := s.opts.Events.AddEvent(ctx, e); err != nil && ctx.Err() == nil {
		s.log.Warn("record board-management event", "node", node, "err", err)
	}
	s.changed(node)
}
