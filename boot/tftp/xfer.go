package tftp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/boot/resolve"
)

// Errors that end a transfer on the server's side.
var (
	// errClientTimeout: the client stopped acknowledging.
	errClientTimeout = errors.New("client stopped acknowledging")
	// errTooLong: the transfer reached Server.MaxDuration.
	errTooLong = errors.New("transfer exceeded the server's maximum duration")
)

// xstate is where a transfer stands.
type xstate uint8

const (
	stNew     xstate = iota // prepared, not yet in the loop
	stHeld                  // request held by the gate, nothing sent yet
	stOACK                  // OACK sent, waiting for ACK 0
	stSending               // sending windows of DATA
	stDone
)

// step tells the loop what a transfer needs after an event.
type step uint8

const (
	stepWait step = iota // nothing: wait for a packet or the timer
	stepPass             // held long enough: start it without admission
	stepDone             // finished; x.err says how
)

// packetWriter sends one datagram to the transfer's client: b, or hdr and
// data joined.
type packetWriter interface {
	write(b []byte) error
	writev(hdr, data []byte) error
}

// xfer is the send side of one transfer as a state machine driven by the
// loop: the OACK handshake, then windows of DATA blocks (RFC 7440;
// windowsize 1 is RFC 1350 lock-step). It does no I/O but through w and
// src, and never blocks, so one goroutine runs every transfer.
type xfer struct {
	w       packetWriter
	src     blockSource
	file    *resolve.File
	peer    netip.AddrPort
	blksize int
	window  int
	timeout time.Duration // first retransmit timeout; doubles per retry up to 4x
	retries int
	idle    time.Duration // longest wait for the client before giving up
	maxLife time.Duration // longest transfer
	oack    []byte        // nil when the request carried no options we answer
	reply   []byte        // an ERROR to send instead of the file (a miss, a refusal)
	size    int64         // the file's size, -1 unknown; 0 for a reply
	res     result        // Outcome and Err preset when reply is set
	fd      int

	state     xstate
	start     time.Time // the request reached the loop
	begun     time.Time // the first packet went out
	base      int64     // first block not yet acknowledged
	maxSent   int64     // highest block sent
	last      int64     // the last block, -1 until it was read
	lastLen   int
	tries     int
	resend    time.Time // when the OACK or window is resent
	heard     time.Time // last progress: the start or an ACK moving on
	answered  bool      // the client acknowledged something
	firstSeen time.Time // the client's first request: the gate's order
	node      *node     // the gate's entry for the client
	heldAt    time.Time // when the gate held the request
	holdUntil time.Time // when a held request is served anyway
	heldI     int       // index among the gate's held requests, -1 when not held
	acked     int64     // file bytes acknowledged
	ackedData bool      // the client acknowledged at least one DATA block
	sent      int64     // file bytes sent, resends included
	timeouts  int       // windows resent after a timeout
	err       error     // why it ended; nil once the last block was acknowledged

	due    time.Time // next timer event
	heapAt time.Time // the time of x's entry in the loop's timer heap; zero: none
}

// hold records that the gate holds x until now+d at the latest.
func (x *xfer) hold(now time.Time, d time.Duration) {
	x.state, x.heldAt, x.holdUntil = stHeld, now, now.Add(d)
}

// begin sends the first packet: the OACK, the first window, or the ERROR
// that answers a miss.
func (x *xfer) begin(now time.Time, pkt []byte) step {
	if x.start.IsZero() {
		x.start = now
	}
	// The idle clock runs from the request's arrival: time held counts,
	// so a client that never answers is gone IdleTimeout after it asked.
	x.heard, x.begun, x.base, x.last = x.start, now, 1, -1
	if x.reply != nil {
		_ = x.w.write(x.reply)
		x.state = stDone
		return stepDone
	}
	if x.oack != nil {
		x.state = stOACK
		return x.sendOACK(now)
	}
	x.state = stSending
	return x.sendWindow(now, pkt)
}

func (x *xfer) sendOACK(now time.Time) step {
	_ = x.w.write(x.oack) // a failed send is a lost packet: the timeout resends
	x.resend = now.Add(x.wait())
	return stepWait
}

// sendWindow sends blocks base.. up to the window or the last block.
func (x *xfer) sendWindow(now time.Time, pkt []byte) step {
	end := x.base + int64(x.window) - 1
	if x.last >= 0 {
		end = min(end, x.last)
	}
	p := pkt[:4+x.blksize]
	binary.BigEndian.PutUint16(p, opDATA)
	sl, mapped := x.src.(slicer)
	for idx := x.base; idx <= end; idx++ {
		var n int
		var err error
		var data []byte
		if mapped {
			data = sl.slice(idx, x.blksize)
			n = len(data)
		} else if n, err = x.src.block(idx, p[4:]); err != nil {
			x.abort(errUndefined, "server error reading file")
			return x.fail(err)
		}
		if n < x.blksize {
			x.last, x.lastLen, end = idx, n, idx
		}
		binary.BigEndian.PutUint16(p[2:], uint16(idx))
		if mapped {
			err = x.w.writev(p[:4], data)
		} else {
			err = x.w.write(p[:4+n])
		}
		if errors.Is(err, unix.EFAULT) {
			x.abort(errUndefined, "server error reading file")
			return x.fail(fmt.Errorf("send block %d: the file changed while it was being sent: %w", idx, err))
		}
		if err != nil {
			// A full socket buffer or an ICMP error for an earlier
			// packet: the rest of the window goes out on the timeout,
			// like a lost window.
			break
		}
		x.sent += int64(n)
		// Blocks of an earlier, larger window may still arrive and be
		// acknowledged, so any block sent so far is a valid ACK.
		x.maxSent = max(x.maxSent, idx)
	}
	x.resend = now.Add(x.wait())
	return stepWait
}

// wait is the retransmit timeout after x.tries retries: doubling, at most 4x.
func (x *xfer) wait() time.Duration {
	return x.timeout << min(x.tries, 2)
}

// packet handles one datagram from the client.
func (x *xfer) packet(b []byte, now time.Time, pkt []byte) step {
	kind, blk, cerr := parseClientPacket(b)
	switch kind {
	case pktError:
		return x.fail(cerr)
	case pktACK:
	default:
		return stepWait // not for a sender: ignore, as before
	}
	switch x.state {
	case stOACK:
		if blk != 0 {
			return stepWait
		}
		x.state, x.tries, x.heard, x.answered = stSending, 0, now, true
		return x.sendWindow(now, pkt)
	case stSending:
		a, ok := ackIndex(x.base-1, x.maxSent, blk)
		if !ok {
			// A stale duplicate: ignored, not answered (no Sorcerer's
			// Apprentice); the timeout resends instead.
			return stepWait
		}
		x.tries, x.heard, x.ackedData, x.answered = 0, now, true, true
		x.acked = a * int64(x.blksize)
		if a == x.last {
			x.acked = (x.last-1)*int64(x.blksize) + int64(x.lastLen)
			x.state = stDone
			return stepDone
		}
		x.base = a + 1 // RFC 7440 section 4: go on from the block after the ACK
		return x.sendWindow(now, pkt)
	}
	return stepWait
}

// ackIndex maps a 16-bit ACK to the absolute block in (prev, end] whose low
// 16 bits match: block numbers roll over, and a window is at most 65535
// blocks long. ok is false for ACKs outside that range.
func ackIndex(prev, end int64, blk uint16) (int64, bool) {
	a := prev + int64(blk-uint16(prev))
	return a, a > prev && a <= end
}

// tick handles the timer: resends, gives up on a silent client, or ends a
// transfer past its lifetime.
func (x *xfer) tick(now time.Time, pkt []byte) step {
	if x.state == stHeld {
		if now.Before(x.holdUntil) {
			return stepWait
		}
		return stepPass
	}
	if x.maxLife > 0 && !now.Before(x.start.Add(x.maxLife)) {
		x.abort(errUndefined, "transfer took too long")
		return x.fail(fmt.Errorf("%w (%s)", errTooLong, x.maxLife))
	}
	if x.idle > 0 && !now.Before(x.heard.Add(x.idle)) {
		x.abort(errUndefined, "timed out waiting for ACK")
		return x.fail(fmt.Errorf("%w: nothing heard for %s", errClientTimeout, x.idle))
	}
	if now.Before(x.resend) {
		return stepWait
	}
	if x.tries++; x.tries > x.retries {
		x.abort(errUndefined, "timed out waiting for ACK")
		if x.state == stOACK {
			return x.fail(fmt.Errorf("%w: no ACK for the OACK after %d retries", errClientTimeout, x.retries))
		}
		return x.fail(fmt.Errorf("%w: no ACK for block %d after %d retries", errClientTimeout, x.maxSent, x.retries))
	}
	if x.state == stOACK {
		return x.sendOACK(now)
	}
	// Resend the whole window from the first unacknowledged block. The
	// window is never shrunk: RFC 7440 receivers acknowledge only after
	// windowsize blocks (or their own timeout), so a smaller window would
	// stall them until they time out.
	x.timeouts++
	return x.sendWindow(now, pkt)
}

// answerWithin is how soon a client must acknowledge its first packet to
// keep its node's place in the gate: a live client answers within a round
// trip; a loaded one within a few hundred milliseconds.
const answerWithin = 500 * time.Millisecond

// unanswered reports whether x's client has let answerWithin pass since
// the first packet without acknowledging anything.
func (x *xfer) unanswered(now time.Time) bool {
	return !x.answered && (x.state == stOACK || x.state == stSending) && !now.Before(x.begun.Add(answerWithin))
}

// wake is when x next needs the timer.
func (x *xfer) wake() time.Time {
	if x.state == stHeld {
		return x.holdUntil
	}
	t := x.resend
	if !x.answered && x.node != nil && x.node.admitted && x.node.answered == 0 {
		t = earliest(t, x.begun.Add(answerWithin)) // the gate's liveness check
	}
	if x.idle > 0 {
		t = earliest(t, x.heard.Add(x.idle))
	}
	if x.maxLife > 0 {
		t = earliest(t, x.start.Add(x.maxLife))
	}
	return t
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// fail ends the transfer with err.
func (x *xfer) fail(err error) step {
	x.state, x.err = stDone, err
	return stepDone
}

// abort tells the client the transfer is over.
func (x *xfer) abort(code uint16, msg string) {
	_ = x.w.write(appendError(nil, code, msg))
}

// Kinds of datagram a client sends on a transfer's port.
const (
	pktOther = iota
	pktACK
	pktError
)

// parseClientPacket reads an ACK's block number or an ERROR. Anything else
// (short packets, other opcodes) is pktOther.
func parseClientPacket(b []byte) (kind int, block uint16, cerr *clientError) {
	if len(b) < 4 {
		return pktOther, 0, nil
	}
	switch binary.BigEndian.Uint16(b) {
	case opACK:
		return pktACK, binary.BigEndian.Uint16(b[2:]), nil
	case opERROR:
		return pktError, 0, parseError(b)
	}
	return pktOther, 0, nil
}
