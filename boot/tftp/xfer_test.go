package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// sentLog is a packetWriter that records what a transfer sends, one
// summary per packet ("OACK", "DATA 3 (512)", "ERROR 0").
type sentLog struct{ pkts []string }

func (s *sentLog) writev(hdr, data []byte) error {
	return s.write(append(append([]byte(nil), hdr...), data...))
}

func (s *sentLog) write(b []byte) error {
	switch binary.BigEndian.Uint16(b) {
	case opOACK:
		s.pkts = append(s.pkts, "OACK")
	case opDATA:
		s.pkts = append(s.pkts, fmt.Sprintf("DATA %d (%d)", binary.BigEndian.Uint16(b[2:]), len(b)-4))
	case opERROR:
		s.pkts = append(s.pkts, fmt.Sprintf("ERROR %d", binary.BigEndian.Uint16(b[2:])))
	}
	return nil
}

func (s *sentLog) take() []string {
	p := s.pkts
	s.pkts = nil
	return p
}

func ackPkt(blk uint16) []byte { return binary.BigEndian.AppendUint16([]byte{0, opACK}, blk) }

// newTestXfer returns a transfer of size bytes at blksize 512.
func newTestXfer(size, window int, oack bool) (*xfer, *sentLog) {
	w := &sentLog{}
	x := &xfer{
		w: w, src: &readAtSource{r: bytes.NewReader(pattern(size)), size: int64(size)},
		blksize: 512, window: window, timeout: time.Second, retries: 3,
		idle: 20 * time.Second, maxLife: time.Minute, heldI: -1,
	}
	if oack {
		x.oack = appendOACK(nil, []option{{"tsize", fmt.Sprint(size)}})
	}
	return x, w
}

// TestXferSteps drives the state machine with a fake clock: every event and
// the packets it sends.
func TestXferSteps(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pkt := make([]byte, 4+512)
	type ev struct {
		at    time.Duration
		ack   int // -1: a timer tick
		want  []string
		wantS step
	}
	tests := map[string]struct {
		size, window int
		oack         bool
		events       []ev
		wantErr      error
		wantBytes    int64
	}{
		"lock-step with OACK": {
			size: 1100, window: 1, oack: true,
			events: []ev{
				{0, -2, []string{"OACK"}, stepWait},
				{1, 0, []string{"DATA 1 (512)"}, stepWait},
				{2, 1, []string{"DATA 2 (512)"}, stepWait},
				{3, 1, nil, stepWait}, // duplicate ACK: ignored
				{4, 2, []string{"DATA 3 (76)"}, stepWait},
				{5, 3, nil, stepDone},
			},
			wantBytes: 1100,
		},
		"window of 4, lost block resent from the gap": {
			size: 3000, window: 4,
			events: []ev{
				{0, -2, []string{"DATA 1 (512)", "DATA 2 (512)", "DATA 3 (512)", "DATA 4 (512)"}, stepWait},
				{1, 2, []string{"DATA 3 (512)", "DATA 4 (512)", "DATA 5 (512)", "DATA 6 (440)"}, stepWait},
				{2, 6, nil, stepDone},
			},
			wantBytes: 3000,
		},
		"OACK resent with backoff, then given up": {
			size: 100, window: 1, oack: true,
			events: []ev{
				{0, -2, []string{"OACK"}, stepWait},
				{time.Second, -1, []string{"OACK"}, stepWait},
				{2 * time.Second, -1, nil, stepWait}, // backoff: next resend at 3 s
				{3 * time.Second, -1, []string{"OACK"}, stepWait},
				{7 * time.Second, -1, []string{"OACK"}, stepWait},
				{11 * time.Second, -1, []string{"ERROR 0"}, stepDone},
			},
			wantErr: errClientTimeout,
		},
		"exact multiple of blksize ends with an empty block": {
			size: 1024, window: 1,
			events: []ev{
				{0, -2, []string{"DATA 1 (512)"}, stepWait},
				{1, 1, []string{"DATA 2 (512)"}, stepWait},
				{2, 2, []string{"DATA 3 (0)"}, stepWait},
				{3, 3, nil, stepDone},
			},
			wantBytes: 1024,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			x, w := newTestXfer(tc.size, tc.window, tc.oack)
			var st step
			for i, e := range tc.events {
				now := t0.Add(e.at)
				switch e.ack {
				case -2:
					st = x.begin(now, pkt)
				case -1:
					st = x.tick(now, pkt)
				default:
					st = x.packet(ackPkt(uint16(e.ack)), now, pkt)
				}
				if diff := cmp.Diff(e.want, w.take()); diff != "" {
					t.Errorf("event %d: sent (-want +got):\n%s", i, diff)
				}
				if st != e.wantS {
					t.Fatalf("event %d: step %d, want %d", i, st, e.wantS)
				}
			}
			if !errors.Is(x.err, tc.wantErr) {
				t.Errorf("err = %v, want %v", x.err, tc.wantErr)
			}
			if tc.wantBytes > 0 && x.acked != tc.wantBytes {
				t.Errorf("acked %d bytes, want %d", x.acked, tc.wantBytes)
			}
		})
	}
}

// TestXferBounds: whatever the retransmit timeout (a client may ask for up
// to 10 s), a silent client is dropped after IdleTimeout, a queued one that
// stops asking too, and every transfer ends at MaxDuration.
func TestXferBounds(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pkt := make([]byte, 4+512)

	x, w := newTestXfer(100, 1, true)
	x.timeout = 10 * time.Second // the largest timeout option
	x.begin(t0, pkt)
	var st step
	var at time.Time
	for i := 0; i < 20 && st != stepDone; i++ {
		at = x.wake()
		st = x.tick(at, pkt)
	}
	if st != stepDone || !errors.Is(x.err, errClientTimeout) {
		t.Fatalf("silent client: step %d err %v", st, x.err)
	}
	if held := at.Sub(t0); held > 20*time.Second {
		t.Errorf("a silent client with timeout 10 held its transfer %v, want <= 20s", held)
	}
	if got := w.take(); len(got) != 3 || got[2] != "ERROR 0" {
		t.Errorf("sent %v, want OACK, one resend at 10 s, ERROR", got)
	}

	h, hw := newTestXfer(5000, 1, true)
	h.start = t0
	h.hold(t0, 5*time.Second)
	if st := h.tick(t0.Add(time.Second), pkt); st != stepWait || len(hw.take()) != 0 {
		t.Fatalf("held request: step %d before its hold ended", st)
	}
	if got := h.wake(); !got.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("held request wakes at %v, want its hold's end", got.Sub(t0))
	}
	if st := h.tick(t0.Add(5*time.Second), pkt); st != stepPass {
		t.Fatalf("held request at its hold's end: step %d, want stepPass", st)
	}
	if st := h.begin(t0.Add(5*time.Second), pkt); st != stepWait || h.start != t0 {
		t.Fatalf("passed request: step %d, start %v (want the request's arrival)", st, h.start.Sub(t0))
	}

	l, _ := newTestXfer(1<<20, 1, false)
	l.begin(t0, pkt)
	var blk uint16
	for now := t0; ; now = now.Add(900 * time.Millisecond) {
		if !now.Before(l.wake()) {
			if st := l.tick(now, pkt); st == stepDone {
				break
			}
		}
		blk++ // a client acknowledging one block just before each timeout
		if st := l.packet(ackPkt(blk), now, pkt); st == stepDone {
			t.Fatal("the file finished: make it bigger")
		}
		if now.Sub(t0) > 2*time.Minute {
			t.Fatal("the trickling client was never cut off")
		}
	}
	if !errors.Is(l.err, errTooLong) {
		t.Errorf("trickling client: err %v, want %v", l.err, errTooLong)
	}
}

func TestAckIndex(t *testing.T) {
	tests := []struct {
		prev, end int64
		blk       uint16
		want      int64
		ok        bool
	}{
		{0, 1, 1, 1, true},
		{0, 1, 0, 0, false}, // the block before the window
		{4, 8, 9, 9, false}, // not sent yet
		{65534, 65540, 0, 65536, true},
		{65535, 65536, 65535, 65535, false},
		{-1, 0, 0, 0, true}, // ACK 0 of an OACK
	}
	for _, tc := range tests {
		got, ok := ackIndex(tc.prev, tc.end, tc.blk)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ackIndex(%d, %d, %d) = %d, %v; want %d, %v", tc.prev, tc.end, tc.blk, got, ok, tc.want, tc.ok)
		}
	}
}
