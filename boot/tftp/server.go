package tftp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/boot/resolve"
)

// Defaults for the Server's zero-valued fields.
const (
	DefaultTimeout      = time.Second
	DefaultRetries      = 5
	DefaultMaxBlksize   = maxBlksize
	DefaultMaxWindow    = 64
	DefaultMaxTransfers = 1024
	DefaultMaxPerClient = 8
	DefaultMaxNodes     = 16
	DefaultMaxHold      = 20 * time.Second
	DefaultFileBudget   = 30 * time.Second
	DefaultIdleTimeout  = 19 * time.Second
	DefaultMaxDuration  = 5 * time.Minute
)

// nodeLinger is how long an admitted client keeps its place after its last
// transfer ended: a Pi asks for its next file within milliseconds, and the
// gap between two files must not hand its place to another node.
const nodeLinger = 2 * time.Second

// MaxTimeoutOption is the largest timeout option (RFC 2349) a client may
// set, in seconds; a larger one is left out of the OACK, so the client
// keeps its default and the server uses Timeout.
const MaxTimeoutOption = 10

// Server is a read-only TFTP server. Its fields are read when Serve starts
// and must not change afterwards. The zero value of every field but Files
// is usable.
type Server struct {
	// Files resolves requested names to files. Required.
	Files resolve.Opener
	// Log receives one line per transfer and server warnings; nil discards.
	Log *slog.Logger
	// Events receives one event per transfer whose file belongs to a known
	// node (store.Store satisfies it); nil records nothing.
	Events EventSink
	// Metrics are updated per transfer; nil records nothing.
	Metrics *Metrics
	// Network runs fn where the server's network is: each transfer's socket
	// is opened inside it (a server in a network namespace opens them
	// there). nil runs fn in the calling thread's own namespace.
	Network func(fn func() error) error

	// Timeout is the retransmit timeout for a block or window: the first
	// wait for an ACK; each retry doubles it, up to 4x. A client's timeout
	// option (1 to MaxTimeoutOption s) replaces it for that transfer.
	// Default DefaultTimeout (1 s).
	Timeout time.Duration
	// Retries is how many times a block, window or OACK is resent after a
	// timeout before the transfer is given up. Default DefaultRetries (5):
	// a silent client is dropped after about 19 s with the default timeout.
	Retries int
	// IdleTimeout ends a transfer whose client has not moved it on for
	// this long, whatever the timeout option and retries say; time held
	// by the gate counts. Default DefaultIdleTimeout
	// (19 s: issue 14 asks that a silent client hold a slot at most 20 s,
	// and timers fire a few milliseconds late on a loaded machine).
	IdleTimeout time.Duration
	// MaxDuration ends any transfer this long after its request, so a
	// client acknowledging just before each timeout cannot hold a transfer
	// for hours. Default DefaultMaxDuration (5 min).
	MaxDuration time.Duration
	// MaxBlksize caps the negotiated block size. Default DefaultMaxBlksize
	// (65464). When the receiving interface is known the cap is further
	// lowered to its MTU minus 32, so DATA packets are never fragmented.
	MaxBlksize int
	// MaxWindow caps the negotiated windowsize (RFC 7440). Default
	// DefaultMaxWindow (64). 1 disables windowed transfers.
	MaxWindow int
	// MaxTransfers caps open transfers: in the handshake, queued or
	// sending (each holds a socket and an open file). Past it requests get
	// ERROR 0 "server busy". Default DefaultMaxTransfers (1024).
	MaxTransfers int
	// MaxPerClient caps open transfers from one client address, so one
	// host cannot take every slot. Default DefaultMaxPerClient (8).
	MaxPerClient int
	// MaxNodes caps the clients (addresses) served at once. A request from
	// another client is held, unanswered, until one of them is done, and
	// clients are let in in the order they first asked (docs/tftp.md), so
	// a saturated link boots some nodes in time instead of slowing every
	// one past the Raspberry Pi's 30 s per-file limit. Default
	// DefaultMaxNodes (16).
	MaxNodes int
	// MaxHold is the longest a request is held before it is served anyway
	// (without letting its client in). A request is held less when its
	// file would not arrive within FileBudget otherwise, at the rate
	// transfers get now. Default DefaultMaxHold (20 s).
	MaxHold time.Duration
	// FileBudget is the time a client allows for a whole file, from its
	// request to the last block: the Raspberry Pi firmware's
	// TFTP_FILE_TIMEOUT. Default DefaultFileBudget (30 s).
	FileBudget time.Duration
}

// ListenAndServe listens on the UDP address addr (e.g. ":69") and serves
// until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("listen for tftp on %s: %w", addr, err)
	}
	return s.Serve(ctx, conn)
}

// Serve answers TFTP requests arriving on conn until ctx ends, then closes
// conn, stops running transfers and returns nil. It returns an error when
// reading from conn fails for another reason.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if s.Files == nil {
		return errors.New("tftp server has no file resolver")
	}
	maxBlk := max(orDefault(s.MaxBlksize, DefaultMaxBlksize), minBlksize)
	lp, err := newLoop(min(maxBlk, maxBlksize),
		newGate(orDefault(s.MaxNodes, DefaultMaxNodes), orDefault(s.MaxHold, DefaultMaxHold),
			orDefault(s.FileBudget, DefaultFileBudget), nodeLinger))
	if err != nil {
		conn.Close()
		return err
	}
	growReadBuffer(conn)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	d := &dispatcher{
		s:    s,
		conn: conn,
		wg:   &wg,
		lim:  newLimiter(orDefault(s.MaxTransfers, DefaultMaxTransfers), orDefault(s.MaxPerClient, DefaultMaxPerClient)),
		src:  newPacketReader(conn),
		loop: lp,
		maps: newMapCache(),
	}
	lp.done = func(x *xfer, now time.Time) { d.ended(ctx, x, now) }
	if m := s.Metrics; m != nil {
		lp.queued = func(delta int, wait time.Duration) {
			m.Queued.Add(float64(delta))
			m.Active.Add(float64(-delta))
			if delta < 0 {
				m.QueueWait.Observe(wait.Seconds())
			}
		}
	}
	loopErr := make(chan error, 1)
	go func() { loopErr <- lp.run() }()
	defer func() {
		cancel()
		conn.Close()
		lp.stop()
		<-loopErr
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	buf := make([]byte, 4096)
	for {
		n, info, err := d.src.read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read tftp request: %w", err)
		}
		if n == len(buf) {
			d.reply(info.peer, errIllegal, "request too long")
			continue
		}
		d.handle(ctx, buf[:n], info)
	}
}

// dispatcher holds what one Serve call shares between requests.
type dispatcher struct {
	s       *Server
	conn    net.PacketConn
	wg      *sync.WaitGroup
	lim     *limiter
	src     packetReader
	loop    *loop
	maps    *mapCache
	mtus    sync.Map     // interface index -> MTU
	busyLog atomic.Int64 // unix nanos of the last "busy" warning
	busyN   atomic.Int64 // requests refused as busy since that warning
}

// handle answers one datagram that arrived on the listening port.
func (d *dispatcher) handle(ctx context.Context, b []byte, info packetInfo) {
	if len(b) < 2 {
		return
	}
	res := result{Client: info.peer.IP.String(), Outcome: OutcomeRefused}
	switch op := binary.BigEndian.Uint16(b); op {
	case opERROR:
		return // never answer an error with an error
	case opRRQ, opWRQ:
	default:
		d.reply(info.peer, errIllegal, "illegal TFTP operation")
		res.Err = fmt.Errorf("opcode %d on the request port", op)
		d.s.finish(ctx, res)
		return
	}
	req, err := parseRequest(b)
	if err != nil {
		var re *requestError
		errors.As(err, &re)
		d.reply(info.peer, re.Code, re.Msg)
		res.Err = err
		d.s.finish(ctx, res)
		return
	}
	res.File = req.Name
	if req.Op == opWRQ {
		d.reply(info.peer, errAccess, "read-only server: writes are refused")
		res.Err = errors.New("write request refused")
		d.s.finish(ctx, res)
		return
	}
	peer := info.peer.AddrPort()
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	firstSeen, why := d.lim.acquire(peer, req.Name, time.Now())
	switch why {
	case admitOK:
	case admitDuplicate:
		// A retransmitted request: the transfer it started answers it
		// with its own retransmission.
		return
	default:
		d.reply(info.peer, errUndefined, "server busy, retry later")
		d.warnBusy(ctx, why)
		res.Outcome = OutcomeBusy
		res.Err = errors.New(strings.ReplaceAll(why, "_", " "))
		if m := d.s.Metrics; m != nil {
			m.Refused.WithLabelValues(why).Inc()
		}
		d.s.finish(ctx, res)
		return
	}
	lim := limits{
		MaxBlksize: orDefault(d.s.MaxBlksize, DefaultMaxBlksize),
		MaxWindow:  orDefault(d.s.MaxWindow, DefaultMaxWindow),
	}
	if mtu := d.mtu(info.ifIndex); mtu > 0 {
		lim.MaxBlksize = min(lim.MaxBlksize, mtu-32)
	}
	lim.MaxBlksize = max(lim.MaxBlksize, minBlksize)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.prepare(ctx, req, info, peer, firstSeen, lim)
	}()
}

// reply sends an ERROR from the listening port.
func (d *dispatcher) reply(peer *net.UDPAddr, code uint16, msg string) {
	_, _ = d.conn.WriteTo(appendError(nil, code, msg), peer)
}

// warnBusy logs at most one warning per second about refused requests.
func (d *dispatcher) warnBusy(ctx context.Context, why string) {
	n := d.busyN.Add(1)
	now := time.Now().UnixNano()
	last := d.busyLog.Load()
	if now-last < int64(time.Second) || !d.busyLog.CompareAndSwap(last, now) {
		return
	}
	d.busyN.Add(-n)
	d.s.logger().WarnContext(ctx, "tftp transfer limit reached, refusing requests",
		"refused", n, "reason", why, "open", d.lim.open(),
		"max_transfers", d.lim.maxTotal, "max_per_client", d.lim.maxPer)
}

// mtu returns the MTU of the interface with index i, 0 when unknown.
func (d *dispatcher) mtu(i int) int {
	if i <= 0 {
		return 0
	}
	if v, ok := d.mtus.Load(i); ok {
		return v.(int)
	}
	ifc, err := net.InterfaceByIndex(i)
	if err != nil {
		return 0
	}
	d.mtus.Store(i, ifc.MTU)
	return ifc.MTU
}

// requestBuffer is the receive buffer asked for the request socket: a
// storm's (or a flood's) requests arrive in bursts that the default
// (about 200 KiB, a few hundred requests) drops while the server is busy.
const requestBuffer = 4 << 20

// growReadBuffer raises the request socket's receive buffer: past the
// system's rmem_max where the process may (SO_RCVBUFFORCE, CAP_NET_ADMIN),
// else up to it.
func growReadBuffer(conn net.PacketConn) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, requestBuffer) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, requestBuffer)
		}
	})
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
