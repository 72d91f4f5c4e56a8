package httpboot

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Connection bounds used by Serve when the Server's fields are zero. A Pi,
// a UEFI client or iPXE opens one or two connections; the agent a few.
const (
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerClient = 32
)

// connLimiter is a net.Listener that holds at most max connections at once,
// and at most perClient from one client address. A connection over a bound
// is accepted and closed at once, so it never waits in the kernel's queue
// holding a slot it cannot use; the client sees a reset or an empty answer.
type connLimiter struct {
	net.Listener
	max, perClient int
	refused        *prometheus.CounterVec // {reason}
	log            *slog.Logger

	mu     sync.Mutex
	total  int
	byAddr map[netip.Addr]int

	lastWarn atomic.Int64 // unix nanos of the last warning logged
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := peerAddr(c.RemoteAddr())
		l.mu.Lock()
		reason := ""
		switch {
		case l.total >= l.max:
			reason = "total"
		case l.byAddr[addr] >= l.perClient:
			reason = "per-client"
		default:
			l.total++
			l.byAddr[addr]++
		}
		l.mu.Unlock()
		if reason == "" {
			return &limitedConn{Conn: c, l: l, addr: addr}, nil
		}
		c.Close()
		l.refused.WithLabelValues(reason).Inc()
		if now := time.Now().UnixNano(); now-l.lastWarn.Load() > int64(10*time.Second) {
			l.lastWarn.Store(now)
			l.log.Warn("http connection refused: too many open", "ip", addr, "limit", reason,
				"max", l.max, "perClient", l.perClient)
		}
	}
}

func (l *connLimiter) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

// peerAddr is the address a connection comes from (IPv4-mapped IPv6
// unmapped, so one client is one key).
func peerAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		if ap := ta.AddrPort(); ap.IsValid() {
			return ap.Addr().Unmap()
		}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// limitedConn gives its slot back on its first Close.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	addr netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.addr) })
	return err
}

// ReadFrom hands a response body to the wrapped connection's ReadFrom. net/http
// reaches sendfile(2) only through a connection that implements io.ReaderFrom
// (*net.TCPConn does); without this method every file would be copied
// through user space in 32 KiB pieces (bench/storm/http.sh: 6x nginx's CPU).
func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}
