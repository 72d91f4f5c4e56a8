package tftp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racklet/racklet-boot/boot/resolve"
)

// Defaults for the Server's zero-valued fields.
const (
	DefaultTimeout      = time.Second
	DefaultRetries      = 5
	DefaultMaxBlksize   = maxBlksize
	DefaultMaxWindow    = 64
	DefaultMaxTransfers = 1024
	DefaultMaxPerClient = 128
)

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
	// Dial opens a transfer's socket (as net.DialUDP("udp", laddr, raddr));
	// nil is net.DialUDP. A server in a network namespace opens them there.
	Dial func(laddr, raddr *net.UDPAddr) (*net.UDPConn, error)

	// Timeout is the retransmit timeout for a block or window: the first
	// wait for an ACK; each retry doubles it, up to 4x. A client's timeout
	// option replaces it for that transfer. Default DefaultTimeout (1 s).
	Timeout time.Duration
	// Retries is how many times a block, window or OACK is resent after a
	// timeout before the transfer is given up. Default DefaultRetries (5):
	// a silent client is dropped after about 19 s with the default timeout.
	Retries int
	// MaxBlksize caps the negotiated block size. Default DefaultMaxBlksize
	// (65464). When the receiving interface is known the cap is further
	// lowered to its MTU minus 32, so DATA packets are never fragmented.
	MaxBlksize int
	// MaxWindow caps the negotiated windowsize (RFC 7440). Default
	// DefaultMaxWindow (64). 1 disables windowed transfers.
	MaxWindow int
	// MaxTransfers caps concurrent transfers (each holds one block buffer,
	// one socket and one open file). Default DefaultMaxTransfers (1024).
	MaxTransfers int
	// MaxPerClient caps concurrent transfers from one client address, so
	// one host cannot take every slot. Default DefaultMaxPerClient (128).
	MaxPerClient int
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
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		conn.Close()
		wg.Wait()
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	d := &dispatcher{
		s:     s,
		conn:  conn,
		wg:    &wg,
		slots: newLimiter(orDefault(s.MaxTransfers, DefaultMaxTransfers), orDefault(s.MaxPerClient, DefaultMaxPerClient)),
		src:   newPacketReader(conn),
	}
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
	slots   *limiter
	src     packetReader
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
	client, _ := netip.AddrFromSlice(info.peer.IP)
	client = client.Unmap()
	if !d.slots.acquire(client) {
		d.reply(info.peer, errUndefined, "server busy, retry later")
		d.warnBusy(ctx)
		res.Outcome = OutcomeBusy
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
		defer d.slots.release(client)
		d.s.transfer(ctx, req, info, client, lim)
	}()
}

// reply sends an ERROR from the listening port.
func (d *dispatcher) reply(peer *net.UDPAddr, code uint16, msg string) {
	_, _ = d.conn.WriteTo(appendError(nil, code, msg), peer)
}

// warnBusy logs at most one warning per second about refused requests.
func (d *dispatcher) warnBusy(ctx context.Context) {
	n := d.busyN.Add(1)
	now := time.Now().UnixNano()
	last := d.busyLog.Load()
	if now-last < int64(time.Second) || !d.busyLog.CompareAndSwap(last, now) {
		return
	}
	d.busyN.Add(-n)
	d.s.logger().WarnContext(ctx, "tftp transfer limit reached, refusing requests",
		"refused", n, "active", d.slots.active(),
		"max_transfers", d.slots.maxTotal, "max_per_client", d.slots.maxPer)
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

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// limiter counts transfers, in total and per client address.
type limiter struct {
	mu       sync.Mutex
	total    int
	per      map[netip.Addr]int
	maxTotal int
	maxPer   int
}

func newLimiter(maxTotal, maxPer int) *limiter {
	return &limiter{per: make(map[netip.Addr]int), maxTotal: maxTotal, maxPer: maxPer}
}

func (l *limiter) acquire(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.maxTotal || l.per[a] >= l.maxPer {
		return false
	}
	l.total++
	l.per[a]++
	return true
}

func (l *limiter) release(a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.per[a]--; l.per[a] <= 0 {
		delete(l.per, a)
	}
}

func (l *limiter) active() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}
