package tftp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// errClientTimeout is returned when the client stopped acknowledging.
var errClientTimeout = errors.New("client stopped acknowledging")

// sender runs the send side of one transfer: the OACK handshake, then
// windows of DATA blocks (RFC 7440; windowsize 1 is RFC 1350 lock-step).
type sender struct {
	conn    *net.UDPConn // connected to the client
	src     blockSource
	blksize int
	window  int
	timeout time.Duration
	retries int

	pkt  []byte // one DATA packet: header + blksize
	recv []byte

	acked     int64 // file bytes acknowledged
	ackedData bool  // the client acknowledged at least one DATA block
	sent      int64 // file bytes sent, resends included
	timeouts  int   // windows resent after a timeout
}

// run sends the OACK (when opts is not empty) and the file. It returns nil
// once the last block is acknowledged, a *clientError when the client sent
// an ERROR, errClientTimeout after too many timeouts, or the I/O error.
func (t *sender) run(opts []option) error {
	t.recv = make([]byte, 1024)
	if len(opts) > 0 {
		if err := t.handshake(appendOACK(nil, opts)); err != nil {
			return err
		}
	}
	t.pkt = make([]byte, 4+t.blksize)
	binary.BigEndian.PutUint16(t.pkt, opDATA)

	base := int64(1) // first block not yet acknowledged
	maxSent := int64(0)
	last := int64(-1)
	lastLen := 0
	tries := 0
	for {
		end := base + int64(t.window) - 1
		if last >= 0 {
			end = min(end, last)
		}
		for idx := base; idx <= end; idx++ {
			n, err := t.src.block(idx, t.pkt[4:])
			if err != nil {
				t.abort(errUndefined, "server error reading file")
				return err
			}
			if n < t.blksize {
				last, lastLen, end = idx, n, idx
			}
			binary.BigEndian.PutUint16(t.pkt[2:], uint16(idx))
			if _, err := t.conn.Write(t.pkt[:4+n]); err != nil {
				return fmt.Errorf("send block %d: %w", idx, err)
			}
			t.sent += int64(n)
		}
		// Blocks of an earlier, larger window may still arrive and be
		// acknowledged, so any block sent so far is a valid ACK.
		maxSent = max(maxSent, end)
		a, err := t.waitAck(base-1, maxSent, t.wait(tries))
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			if tries++; tries > t.retries {
				t.abort(errUndefined, "timed out waiting for ACK")
				return fmt.Errorf("%w: no ACK for block %d after %d retries", errClientTimeout, end, t.retries)
			}
			// Resend the whole window from the first unacknowledged block.
			// The window is never shrunk: RFC 7440 receivers acknowledge
			// only after windowsize blocks (or their own timeout), so a
			// smaller window would stall them until they time out.
			t.timeouts++
			continue
		case err != nil:
			return err
		}
		tries = 0
		t.ackedData = true
		t.acked = a * int64(t.blksize)
		if a == last {
			t.acked = (last-1)*int64(t.blksize) + int64(lastLen)
			return nil
		}
		base = a + 1 // RFC 7440 section 4: go on from the block after the ACK
	}
}

// handshake sends the OACK until the client acknowledges it with ACK 0.
func (t *sender) handshake(oack []byte) error {
	for tries := 0; ; tries++ {
		if _, err := t.conn.Write(oack); err != nil {
			return fmt.Errorf("send OACK: %w", err)
		}
		_, err := t.waitAck(-1, 0, t.wait(tries))
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if tries >= t.retries {
				t.abort(errUndefined, "timed out waiting for ACK")
				return fmt.Errorf("%w: no ACK for the OACK after %d retries", errClientTimeout, t.retries)
			}
			continue
		}
		return err
	}
}

// wait is the timeout after the given number of retries: doubling, at most 4x.
func (t *sender) wait(tries int) time.Duration {
	return t.timeout << min(tries, 2)
}

// waitAck waits up to d for an ACK of a block in (prev, end], returning its
// absolute index. ACKs of prev or outside the window are stale duplicates
// and are ignored without resending, which avoids the Sorcerer's
// Apprentice bug; the timeout resends instead.
func (t *sender) waitAck(prev, end int64, d time.Duration) (int64, error) {
	if err := t.conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		return 0, err
	}
	for {
		n, err := t.conn.Read(t.recv)
		if err != nil {
			return 0, err
		}
		if n < 4 {
			continue
		}
		switch binary.BigEndian.Uint16(t.recv) {
		case opACK:
			blk := binary.BigEndian.Uint16(t.recv[2:])
			// Block numbers roll over: find the block in the window whose
			// low 16 bits match. The window is at most 65535 blocks long.
			a := prev + int64(blk-uint16(prev))
			if a > prev && a <= end {
				return a, nil
			}
		case opERROR:
			return 0, parseError(t.recv[:n])
		}
	}
}

// abort tells the client the transfer is over.
func (t *sender) abort(code uint16, msg string) {
	_, _ = t.conn.Write(appendError(nil, code, msg))
}
