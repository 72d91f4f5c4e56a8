package tftp

import (
	"container/heap"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// errShutdown ends the transfers still running when the server stops.
var errShutdown = errors.New("server shutting down")

// loop runs every transfer of one server on one goroutine, the way dnsmasq
// does: each transfer has its own UDP socket connected to its client (the
// transfer ID), all of them in one epoll set; a datagram from a client is
// one epoll wake-up, one read and the next block's one write, with no
// goroutine hand-off and no allocation. Retransmit, idle and lifetime
// timers live in one heap; epoll_wait sleeps until the earliest. Transfers
// reach the loop through add (an inbox and an eventfd), already prepared
// off the loop: socket made, file opened, options negotiated.
type loop struct {
	epfd, evfd int

	mu      sync.Mutex
	inbox   []*xfer
	stopped bool

	xfers  map[int32]*xfer // by socket
	timers timerHeap
	gate   *gate
	pkt    []byte // one DATA packet, shared: sends are synchronous
	rbuf   []byte
	// done is called on the loop for each transfer that ended, after its
	// socket was closed and its slot given back.
	done func(x *xfer, now time.Time)
	// queued is called when the gate holds a request (+1) or lets it go
	// (-1); wait is how long it was held when it goes.
	queued func(delta int, wait time.Duration)
}

func newLoop(maxBlksize int, g *gate) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("tftp: create epoll set: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("tftp: create eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("tftp: watch eventfd: %w", err)
	}
	return &loop{
		epfd: epfd, evfd: evfd,
		xfers:  make(map[int32]*xfer),
		gate:   g,
		pkt:    make([]byte, 4+maxBlksize),
		rbuf:   make([]byte, 1024),
		done:   func(*xfer, time.Time) {},
		queued: func(int, time.Duration) {},
	}, nil
}

// add hands a prepared transfer to the loop. It returns false once the
// loop is stopping; the caller then ends the transfer itself.
func (l *loop) add(x *xfer) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.inbox = append(l.inbox, x)
	l.mu.Unlock()
	l.wake()
	return true
}

// stop makes run end every transfer and return.
func (l *loop) stop() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.wake()
}

func (l *loop) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(l.evfd, one[:])
}

// run serves transfers until stop; it closes the epoll set and eventfd.
func (l *loop) run() error {
	defer unix.Close(l.epfd)
	defer unix.Close(l.evfd)
	events := make([]unix.EpollEvent, 256)
	for {
		msec := -1
		var next time.Time
		if len(l.timers) > 0 {
			next = l.timers[0].at
		}
		if !l.gate.lingerAt.IsZero() {
			next = earliest(next, l.gate.lingerAt)
		}
		if !next.IsZero() {
			d := time.Until(next)
			msec = int((max(d, 0) + time.Millisecond - 1) / time.Millisecond)
		}
		n, err := unix.EpollWait(l.epfd, events, msec)
		if err != nil && !errors.Is(err, unix.EINTR) {
			l.shutdown(time.Now())
			return fmt.Errorf("tftp: wait for packets: %w", err)
		}
		now := time.Now()
		for _, ev := range events[:max(n, 0)] {
			if ev.Fd == int32(l.evfd) {
				if l.adopt(now) {
					l.shutdown(now)
					return nil
				}
				continue
			}
			if x := l.xfers[ev.Fd]; x != nil {
				l.readable(x, now)
			}
		}
		l.fire(now)
	}
}

// adopt starts the transfers in the inbox; it reports whether the loop is
// stopping.
func (l *loop) adopt(now time.Time) bool {
	var buf [8]byte
	_, _ = unix.Read(l.evfd, buf[:])
	l.mu.Lock()
	in, stopped := l.inbox, l.stopped
	l.inbox = nil
	l.mu.Unlock()
	for _, x := range in {
		if stopped {
			x.start = now
			x.fail(errShutdown)
			l.finish(x, now)
			continue
		}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, x.fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(x.fd)}); err != nil {
			x.start = now
			x.fail(fmt.Errorf("watch transfer socket: %w", err))
			l.finish(x, now)
			continue
		}
		l.xfers[int32(x.fd)] = x
		x.start = now
		if l.gate.enter(x) {
			l.handle(x, x.begin(now, l.pkt), now)
			continue
		}
		d := l.gate.holdFor(x.size)
		if d <= 0 {
			l.handle(x, x.begin(now, l.pkt), now) // no time to spare for this file
			continue
		}
		x.hold(now, d)
		l.gate.holdX(x)
		l.queued(1, 0)
		l.schedule(x)
	}
	return stopped
}

// readable reads one datagram of x's socket (epoll is level-triggered: a
// second one wakes the loop again).
func (l *loop) readable(x *xfer, now time.Time) {
	n, err := recv(x.fd, l.rbuf)
	switch {
	case err == nil:
		was := x.answered
		st := x.packet(l.rbuf[:n], now, l.pkt)
		if x.answered && !was {
			x.node.answered++
		}
		l.handle(x, st, now)
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
	case errors.Is(err, unix.ECONNREFUSED):
		// An ICMP port unreachable for something we sent: a packet lost,
		// not a verdict (a stale neighbour entry sends it to the wrong
		// host); a client that is really gone is dropped by the idle
		// timeout.
	default:
		l.handle(x, x.fail(fmt.Errorf("receive: %w", err)), now)
	}
}

// handle acts on what a transfer needs after an event.
func (l *loop) handle(x *xfer, st step, now time.Time) {
	switch st {
	case stepDone:
		l.finish(x, now)
		return
	case stepPass:
		// Held as long as the gate may hold one request: served now, its
		// node still not admitted.
		l.release(x, now)
		l.handle(x, x.begin(now, l.pkt), now)
		return
	}
	l.schedule(x)
}

// release takes a held request out of the gate's line.
func (l *loop) release(x *xfer, now time.Time) {
	l.gate.unhold(x)
	l.queued(-1, now.Sub(x.heldAt))
}

// schedule puts x's next timer event in the heap. An entry later than
// x.due is not moved: fire finds it stale and pushes the right one.
func (l *loop) schedule(x *xfer) {
	x.due = x.wake()
	if x.heapAt.IsZero() || x.due.Before(x.heapAt) {
		heap.Push(&l.timers, timerEntry{at: x.due, x: x})
		x.heapAt = x.due
	}
}

// fire runs the timers that are due.
func (l *loop) fire(now time.Time) {
	if !l.gate.lingerAt.IsZero() && !now.Before(l.gate.lingerAt) {
		l.gate.expire(now)
		l.grant(now)
	}
	for len(l.timers) > 0 && !l.timers[0].at.After(now) {
		e := heap.Pop(&l.timers).(timerEntry)
		x := e.x
		if x.state == stDone || !e.at.Equal(x.heapAt) {
			continue // finished, or superseded by an earlier entry
		}
		x.heapAt = time.Time{}
		if now.Before(x.due) {
			l.schedule(x) // the client made progress since: wait on
			continue
		}
		st := x.tick(now, l.pkt)
		if n := x.node; st == stepWait && x.unanswered(now) && n.admitted && n.answered == 0 {
			// Admitted, yet nothing of it answered in time: a silent
			// client does not keep its place.
			l.gate.demote(n)
			l.grant(now)
		}
		l.handle(x, st, now)
	}
}

// finish closes x's socket, takes it out of the gate and reports; a node
// that leaves makes room for the next one.
func (l *loop) finish(x *xfer, now time.Time) {
	held := x.state == stHeld
	x.state = stDone
	if x.fd >= 0 {
		delete(l.xfers, int32(x.fd))
		unix.Close(x.fd) // also leaves the epoll set
		x.fd = -1
	}
	if held {
		l.release(x, now)
	}
	if x.err == nil && x.node != nil && x.node.admitted {
		l.gate.measured(x.acked, now.Sub(x.begun))
	}
	l.gate.leave(x, now)
	if x.src != nil {
		x.src.release()
	}
	l.done(x, now)
}

// grant admits waiting nodes while the gate has room and starts their held
// requests.
func (l *loop) grant(now time.Time) {
	for {
		n, xs := l.gate.next()
		if n == nil {
			return
		}
		for _, x := range xs {
			l.queued(-1, now.Sub(x.heldAt))
			l.handle(x, x.begin(now, l.pkt), now)
		}
	}
}

// shutdown tells every client the server is going away and ends its transfer.
func (l *loop) shutdown(now time.Time) {
	l.gate.max = 0 // no more admissions
	for _, x := range l.xfers {
		x.abort(errUndefined, "server shutting down")
		x.fail(errShutdown)
		l.finish(x, now)
	}
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.adopt(now)
}

// timerEntry is one pending timer event.
type timerEntry struct {
	at time.Time
	x  *xfer
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(v any)        { *h = append(*h, v.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = timerEntry{}
	*h = old[:len(old)-1]
	return e
}

func closeFd(fd int) error { return unix.Close(fd) }

// fdWriter sends datagrams on a connected UDP socket with send(2) and
// sendmsg(2), which skip the file layer write(2) goes through.
type fdWriter int

func (w fdWriter) write(b []byte) error {
	return w.writev(b, nil)
}

// writev sends hdr and data as one datagram: a block goes out straight from
// the file's mapping, with no copy in user space; a file truncated under it
// makes the kernel's copy fail with EFAULT instead of a SIGBUS here.
func (w fdWriter) writev(hdr, data []byte) error {
	var iov [2]unix.Iovec
	iov[0].Base = &hdr[0]
	iov[0].SetLen(len(hdr))
	msg := unix.Msghdr{Iov: &iov[0]}
	msg.SetIovlen(1)
	if len(data) > 0 {
		iov[1].Base = &data[0]
		iov[1].SetLen(len(data))
		msg.SetIovlen(2)
	}
	for {
		// Not raw: the kernel's copy from a mapping may fault a cold page
		// in from disk, and the scheduler must know this thread waits.
		_, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(w), uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}

// recv reads one datagram from a connected UDP socket with recv(2). The
// call is raw (the scheduler is not told): non-blocking, into memory of our
// own, it never waits, and it saves entersyscall/exitsyscall per packet.
func recv(fd int, b []byte) (int, error) {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), unix.MSG_DONTWAIT, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		return int(n), nil
	}
}

// dial opens a transfer socket where Server.Network says.
func (s *Server) dial(local net.IP, peer netip.AddrPort) (fd int, err error) {
	if s.Network == nil {
		return dialUDP(local, peer)
	}
	err = s.Network(func() (err error) {
		fd, err = dialUDP(local, peer)
		return err
	})
	return fd, err
}

// dialUDP makes a non-blocking UDP socket connected to peer, bound to local
// when given (so replies leave from the address the client asked), else to
// what the kernel picks, in the calling thread's network namespace.
func dialUDP(local net.IP, peer netip.AddrPort) (int, error) {
	pa := peer.Addr().Unmap()
	family := unix.AF_INET6
	if pa.Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, fmt.Errorf("open transfer socket: %w", err)
	}
	if local != nil {
		if la, ok := netip.AddrFromSlice(local); ok {
			if sa := sockaddr(netip.AddrPortFrom(la.Unmap(), 0), family); sa != nil {
				_ = unix.Bind(fd, sa) // else the kernel picks the source address
			}
		}
	}
	if err := unix.Connect(fd, sockaddr(netip.AddrPortFrom(pa, peer.Port()), family)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect transfer socket to %s: %w", peer, err)
	}
	return fd, nil
}

// sockaddr converts ap for a socket of the given family; nil when ap does
// not fit it.
func sockaddr(ap netip.AddrPort, family int) unix.Sockaddr {
	a := ap.Addr()
	switch {
	case family == unix.AF_INET && a.Is4():
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	case family == unix.AF_INET6 && a.Is6():
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
		if z := a.Zone(); z != "" {
			if ifc, err := net.InterfaceByName(z); err == nil {
				sa.ZoneId = uint32(ifc.Index)
			}
		}
		return sa
	}
	return nil
}
