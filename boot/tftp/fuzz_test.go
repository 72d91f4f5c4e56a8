package tftp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseRequest checks that any datagram either parses into a request
// that obeys the package's limits and survives a round trip, or fails with
// a *requestError; and that negotiation stays within the RFC ranges.
func FuzzParseRequest(f *testing.F) {
	f.Add(rrq(opRRQ, "start4.elf", "octet", "tsize", "0", "blksize", "1468"))
	f.Add(rrq(opRRQ, "grub.cfg-01-52-54-00-12-34-56", "octet", "blksize", "1468", "windowsize", "4"))
	f.Add(rrq(opWRQ, "f", "netascii"))
	f.Add(rrq(opRRQ, "f", "mail"))
	f.Add(rrq(opRRQ, "f", "octet", "blksize", "7", "blksize", "99999"))
	f.Add([]byte{0, 1, 0, 0})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			if _, ok := err.(*requestError); !ok {
				t.Fatalf("error %v is a %T, want *requestError", err, err)
			}
			return
		}
		if r.Op != opRRQ && r.Op != opWRQ {
			t.Fatalf("parsed opcode %d", r.Op)
		}
		if r.Name == "" || len(r.Name) > maxNameLen {
			t.Fatalf("accepted name of %d bytes", len(r.Name))
		}
		if r.Mode != "octet" && r.Mode != "netascii" {
			t.Fatalf("accepted mode %q", r.Mode)
		}
		seen := map[string]bool{}
		var opts []string
		for _, o := range r.Options {
			if seen[o.Name] {
				t.Fatalf("duplicate option %q accepted", o.Name)
			}
			seen[o.Name] = true
			opts = append(opts, o.Name, o.Value)
		}
		again, err := parseRequest(rrq(r.Op, r.Name, r.Mode, opts...))
		if err != nil {
			t.Fatalf("re-encoded request does not parse: %v", err)
		}
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("round trip mismatch (-first +again):\n%s", diff)
		}
		for _, lim := range []limits{{MaxBlksize: 1468, MaxWindow: 64}, {MaxBlksize: 65504, MaxWindow: 65535}} {
			n := negotiate(r, lim)
			if n.Blksize < minBlksize || n.Blksize > min(maxBlksize, max(lim.MaxBlksize, defaultBlksize)) {
				t.Fatalf("blksize %d out of range for %+v", n.Blksize, lim)
			}
			if n.Windowsize < 1 || n.Windowsize > lim.MaxWindow {
				t.Fatalf("windowsize %d out of range", n.Windowsize)
			}
			if n.Timeout < 0 || n.Timeout > MaxTimeoutOption {
				t.Fatalf("timeout %d out of range", n.Timeout)
			}
			oack := appendOACK(nil, n.Ack)
			if binary.BigEndian.Uint16(oack) != opOACK {
				t.Fatalf("bad OACK")
			}
		}
	})
}

// FuzzClientPackets feeds a transfer of a 3000-byte file any sequence of
// datagrams and timer ticks from its client. The input is split at 0xff
// bytes; each piece is one datagram, an empty piece a tick one retransmit
// timeout later. Whatever arrives, the transfer never claims more bytes
// acknowledged than the file has, never sends a block past the end or
// beyond the window, and ends within its retries.
func FuzzClientPackets(f *testing.F) {
	f.Add([]byte("\x00\x04\x00\x00\xff\x00\x04\x00\x01\xff\x00\x04\x00\x06"), uint8(1))
	f.Add([]byte("\x00\x04\xff\xff\xff\x00\x04\x00\x03\xff\xff\x00\x04\x00\x06"), uint8(4))
	f.Add([]byte("\x00\x05\x00\x00Early terminate\x00"), uint8(1))
	f.Add([]byte("\x00\x04\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"), uint8(2))
	f.Add([]byte("\x00\x03\x00\x01data\xff\x00\x06\xff\x00\x04"), uint8(3))
	f.Fuzz(func(t *testing.T, in []byte, window uint8) {
		const size = 3000
		x, w := newTestXfer(size, int(window%8)+1, window&0x80 != 0)
		pkt := make([]byte, 4+512)
		now := time.Unix(1000, 0)
		st := x.begin(now, pkt)
		for _, d := range bytes.Split(in, []byte{0xff}) {
			if st == stepDone {
				break
			}
			if len(d) == 0 {
				now = x.wake()
				st = x.tick(now, pkt)
			} else {
				now = now.Add(time.Millisecond)
				st = x.packet(d, now, pkt)
			}
			if st == stepPass {
				t.Fatal("a transfer that was never held asked to pass the gate")
			}
		}
		if x.acked < 0 || x.acked > size {
			t.Fatalf("acknowledged %d bytes of %d", x.acked, size)
		}
		if x.err == nil && st == stepDone && x.acked != size {
			t.Fatalf("ended ok with %d of %d bytes", x.acked, size)
		}
		for _, p := range w.pkts {
			var blk, n int
			if _, err := fmt.Sscanf(p, "DATA %d (%d)", &blk, &n); err != nil {
				continue
			}
			if blk < 1 || blk > 6 || (blk < 6 && n != 512) || (blk == 6 && n != size-5*512) {
				t.Fatalf("sent %s", p)
			}
		}
		// However the client behaves, the transfer ends: within the
		// retries once it stops answering.
		for range x.retries + 2 {
			if st == stepDone {
				return
			}
			now = x.wake()
			st = x.tick(now, pkt)
		}
		if st != stepDone {
			t.Fatalf("transfer still open %d retries after the client went silent", x.retries+2)
		}
	})
}

// FuzzParseClientPacket: any datagram is an ACK, an ERROR or ignored, and
// an ERROR's message never carries its terminating NUL.
func FuzzParseClientPacket(f *testing.F) {
	f.Add([]byte("\x00\x04\x12\x34"))
	f.Add([]byte("\x00\x05\x00\x08bad option\x00"))
	f.Add([]byte("\x00\x05\x00"))
	f.Add([]byte("\x00\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, blk, cerr := parseClientPacket(b)
		switch kind {
		case pktACK:
			if len(b) < 4 || binary.BigEndian.Uint16(b) != opACK || blk != binary.BigEndian.Uint16(b[2:]) {
				t.Fatalf("%x read as ACK %d", b, blk)
			}
		case pktError:
			if cerr == nil || len(b) < 4 || cerr.Code != binary.BigEndian.Uint16(b[2:]) || strings.HasSuffix(cerr.Msg, "\x00") {
				t.Fatalf("%x read as ERROR %+v", b, cerr)
			}
		case pktOther:
			if len(b) >= 4 && (binary.BigEndian.Uint16(b) == opACK || binary.BigEndian.Uint16(b) == opERROR) {
				t.Fatalf("%x ignored", b)
			}
		}
	})
}
