package tftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/store"
)

// fakeFiles is a resolve.Opener over a map. Names in refuse get
// resolve.ErrRefused, names in broken a plain error, others not in files
// os.ErrNotExist.
type fakeFiles struct {
	node   string
	files  map[string][]byte
	refuse map[string]bool
	broken map[string]bool

	mu   sync.Mutex
	reqs []resolve.Request
}

func (f *fakeFiles) Open(ctx context.Context, req resolve.Request) (*resolve.File, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	switch {
	case f.refuse[req.Name]:
		return nil, fmt.Errorf("open %q: %w", req.Name, resolve.ErrRefused)
	case f.broken[req.Name]:
		return nil, errors.New("disk on fire")
	}
	b, ok := f.files[req.Name]
	if !ok {
		return nil, fmt.Errorf("open %q: %w", req.Name, os.ErrNotExist)
	}
	return &resolve.File{
		Content: bytes.NewReader(b),
		Closer:  io.NopCloser(nil),
		Size:    int64(len(b)),
		Node:    f.node,
		Path:    req.Name,
	}, nil
}

// eventLog is an EventSink that keeps events.
type eventLog struct {
	mu     sync.Mutex
	events []store.Event
}

func (l *eventLog) AddEvent(ctx context.Context, e store.Event) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
	return nil
}

// types returns the event types seen so far.
func (l *eventLog) types() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []string
	for _, e := range l.events {
		ts = append(ts, e.Type)
	}
	return ts
}

// waitEvents waits until n events were recorded and returns them.
func (l *eventLog) waitEvents(t testing.TB, n int) []store.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		if len(l.events) >= n {
			ev := append([]store.Event(nil), l.events...)
			l.mu.Unlock()
			return ev
		}
		l.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %d events, have %v", n, l.types())
	return nil
}

// startServer runs s on a loopback port and returns its address. The
// server is stopped at cleanup, and Serve must then return nil.
func startServer(t testing.TB, s *Server) *net.UDPAddr {
	t.Helper()
	return startServerOn(t, s, "127.0.0.1:0")
}

func startServerOn(t testing.TB, s *Server, addr string) *net.UDPAddr {
	t.Helper()
	if s.Log == nil && testing.Verbose() {
		s.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	testutil.Serve(t, func(ctx context.Context) error { return s.Serve(ctx, conn) })
	return conn.LocalAddr().(*net.UDPAddr)
}

// rawClient speaks TFTP by hand, for cases real clients cannot produce.
type rawClient struct {
	t    testing.TB
	conn *net.UDPConn
	srv  *net.UDPAddr
	peer *net.UDPAddr // transfer port once known
	buf  []byte
}

func newRawClient(t testing.TB, srv *net.UDPAddr) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("client socket: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, srv: srv}
}

// rrq builds a request packet; opts alternate names and values.
func rrq(op uint16, name, mode string, opts ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, op)
	for _, s := range append([]string{name, mode}, opts...) {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

func (c *rawClient) sendTo(to *net.UDPAddr, b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(b, to); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// request sends b to the server's request port.
func (c *rawClient) request(b []byte) { c.t.Helper(); c.sendTo(c.srv, b) }

// send sends b to the transfer port.
func (c *rawClient) send(b []byte) { c.t.Helper(); c.sendTo(c.peer, b) }

func (c *rawClient) ack(block uint16) {
	c.t.Helper()
	c.send(binary.BigEndian.AppendUint16([]byte{0, opACK}, block))
}

func (c *rawClient) sendError(code uint16, msg string) {
	c.t.Helper()
	c.send(appendError(nil, code, msg))
}

// packet is one datagram received by the raw client.
type packet struct {
	Op    uint16
	Block uint16 // DATA and ACK
	Code  uint16 // ERROR
	Msg   string // ERROR
	Opts  map[string]string
	Data  []byte
}

// recv reads one datagram, failing the test after d.
func (c *rawClient) recv(d time.Duration) packet {
	c.t.Helper()
	p, err := c.tryRecv(d)
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	return p
}

func (c *rawClient) tryRecv(d time.Duration) (packet, error) {
	if c.buf == nil {
		c.buf = make([]byte, 70000)
	}
	buf := c.buf
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		return packet{}, err
	}
	c.peer = from
	b := buf[:n]
	p := packet{Op: binary.BigEndian.Uint16(b)}
	switch p.Op {
	case opDATA:
		p.Block = binary.BigEndian.Uint16(b[2:])
		p.Data = append([]byte(nil), b[4:]...)
	case opERROR:
		e := parseError(b)
		p.Code, p.Msg = e.Code, e.Msg
	case opOACK:
		p.Opts = map[string]string{}
		fs := bytes.Split(bytes.TrimSuffix(b[2:], []byte{0}), []byte{0})
		for i := 0; i+1 < len(fs); i += 2 {
			p.Opts[string(fs[i])] = string(fs[i+1])
		}
	}
	return p, nil
}

// pattern returns n bytes that differ from block to block.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/511)
	}
	return b
}
