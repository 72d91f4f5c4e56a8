package tftp

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestRefusals checks the ERROR answers to requests the server refuses.
func TestRefusals(t *testing.T) {
	files := &fakeFiles{
		files:  map[string][]byte{"ok": []byte("x")},
		refuse: map[string]bool{"../etc/passwd": true},
		broken: map[string]bool{"broken": true},
	}
	srv := startServer(t, &Server{Files: files})
	tests := map[string]struct {
		pkt  []byte
		code uint16
	}{
		"wrq":                {rrq(opWRQ, "ok", "octet"), errAccess},
		"garbage opcode":     {[]byte{0x12, 0x34, 1, 2, 3}, errIllegal},
		"stray ack":          {[]byte{0, opACK, 0, 1}, errIllegal},
		"stray data":         {[]byte{0, opDATA, 0, 1, 'x'}, errIllegal},
		"mail mode":          {rrq(opRRQ, "ok", "mail"), errIllegal},
		"name over 255":      {rrq(opRRQ, strings.Repeat("n", 256), "octet"), errAccess},
		"NUL inside name":    {rrq(opRRQ, "ok\x00evil", "octet"), errIllegal},
		"duplicate options":  {rrq(opRRQ, "ok", "octet", "blksize", "1024", "blksize", "512"), errOptionsDeny},
		"not found":          {rrq(opRRQ, "nope", "octet"), errNotFound},
		"resolver refuses":   {rrq(opRRQ, "../etc/passwd", "octet"), errAccess},
		"resolver fails":     {rrq(opRRQ, "broken", "octet"), errUndefined},
		"unterminated":       {[]byte("\x00\x01ok\x00octet"), errIllegal},
		"option w/o a value": {rrq(opRRQ, "ok", "octet", "tsize"), errIllegal},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newRawClient(t, srv)
			c.request(tc.pkt)
			p := c.recv(5 * time.Second)
			if p.Op != opERROR || p.Code != tc.code {
				t.Fatalf("got %+v, want ERROR %d", p, tc.code)
			}
			if p.Msg == "" {
				t.Errorf("ERROR %d has no message", p.Code)
			}
		})
	}
	// A client ERROR on the request port gets no answer.
	c := newRawClient(t, srv)
	c.request(appendError(nil, 0, "hello"))
	if p, err := c.tryRecv(300 * time.Millisecond); err == nil {
		t.Errorf("server answered an ERROR with %+v", p)
	}
}

// TestMissesAreFast measures nothing but checks that a burst of misses,
// as GRUB sends, is answered without waiting on anything.
func TestMissesAreFast(t *testing.T) {
	srv := startServer(t, &Server{Files: &fakeFiles{}})
	c := newRawClient(t, srv)
	for i := range 200 {
		c.request(rrq(opRRQ, "grub.cfg-0A00006"+strconv.Itoa(i), "octet", "blksize", "1468"))
		if p := c.recv(2 * time.Second); p.Op != opERROR || p.Code != errNotFound {
			t.Fatalf("miss %d: got %+v, want ERROR 1", i, p)
		}
	}
}

// readAll plays a well-behaved lock-step or windowed client after the
// request was sent: it acknowledges an OACK and the last block of every
// window and returns the file and the OACK options.
func readAll(t *testing.T, c *rawClient, window int) ([]byte, map[string]string) {
	t.Helper()
	var out bytes.Buffer
	var opts map[string]string
	next := uint16(1)
	inWindow := 0
	gapAcked := false
	for range 1 << 20 {
		p := c.recv(5 * time.Second)
		switch p.Op {
		case opOACK:
			opts = p.Opts
			c.ack(0)
			continue
		case opERROR:
			t.Fatalf("server sent ERROR %d %q", p.Code, p.Msg)
		case opDATA:
		default:
			t.Fatalf("unexpected packet %+v", p)
		}
		if p.Block != next {
			// A gap (or an old resent block): acknowledge what we have
			// once, as an RFC 7440 receiver does, and wait for the resend.
			if !gapAcked {
				c.ack(next - 1)
				gapAcked = true
				inWindow = 0
			}
			continue
		}
		gapAcked = false
		out.Write(p.Data)
		next++
		inWindow++
		blk, _ := strconv.Atoi(opts["blksize"])
		if blk == 0 {
			blk = 512
		}
		last := len(p.Data) < blk
		if last || inWindow == window {
			c.ack(p.Block)
			inWindow = 0
		}
		if last {
			return out.Bytes(), opts
		}
	}
	t.Fatal("transfer did not end")
	return nil, nil
}

func TestOptions(t *testing.T) {
	data := pattern(5000)
	srv := startServer(t, &Server{Files: &fakeFiles{files: map[string][]byte{"f": data}}})
	tests := map[string]struct {
		opts   []string
		window int
		want   map[string]string // OACK; nil when none is expected
	}{
		"no options":            {},
		"pi":                    {opts: []string{"tsize", "0", "blksize", "1468"}, want: map[string]string{"tsize": "5000", "blksize": "1468"}},
		"blksize 7 ignored":     {opts: []string{"blksize", "7"}},
		"blksize 8":             {opts: []string{"blksize", "8"}, want: map[string]string{"blksize": "8"}},
		"blksize 99999 clamped": {opts: []string{"blksize", "99999"}, want: map[string]string{"blksize": "65464"}},
		"negative tsize":        {opts: []string{"tsize", "-1"}},
		"garbage tsize":         {opts: []string{"tsize", "lots", "blksize", "1024"}, want: map[string]string{"blksize": "1024"}},
		"timeout echoed":        {opts: []string{"timeout", "2"}, want: map[string]string{"timeout": "2"}},
		"window 4":              {opts: []string{"blksize", "100", "windowsize", "4"}, window: 4, want: map[string]string{"blksize": "100", "windowsize": "4"}},
		"window capped":         {opts: []string{"windowsize", "1000"}, window: 64, want: map[string]string{"windowsize": "64"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := newRawClient(t, srv)
			c.request(rrq(opRRQ, "f", "octet", tc.opts...))
			got, opts := readAll(t, c, max(tc.window, 1))
			if !bytes.Equal(got, data) {
				t.Errorf("got %d bytes, want the %d-byte file", len(got), len(data))
			}
			if diff := cmp.Diff(tc.want, opts); diff != "" {
				t.Errorf("OACK mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRollover reads a file of more than 65536 blocks, so block numbers
// wrap to 0, both windowed and lock-step.
func TestRollover(t *testing.T) {
	data := pattern(65600 * 8)
	srv := startServer(t, &Server{Files: &fakeFiles{files: map[string][]byte{"big": data}}})
	for _, w := range []int{64, 1} {
		t.Run("window "+strconv.Itoa(w), func(t *testing.T) {
			if w == 1 && testing.Short() {
				t.Skip("lock-step rollover takes 65600 round trips")
			}
			c := newRawClient(t, srv)
			c.request(rrq(opRRQ, "big", "octet", "blksize", "8", "windowsize", strconv.Itoa(w)))
			got, _ := readAll(t, c, w)
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, want the %d-byte file", len(got), len(data))
			}
		})
	}
}

// TestWindowResend drops a block inside a window: the client acknowledges
// the last block it has in order, and the server must go on from there
// (RFC 7440 section 4) instead of waiting for a timeout.
func TestWindowResend(t *testing.T) {
	data := pattern(100 * 20)
	srv := startServer(t, &Server{Files: &fakeFiles{files: map[string][]byte{"f": data}}, Timeout: 10 * time.Second})
	c := newRawClient(t, srv)
	c.request(rrq(opRRQ, "f", "octet", "blksize", "100", "windowsize", "8"))
	if p := c.recv(5 * time.Second); p.Op != opOACK {
		t.Fatalf("got %+v, want OACK", p)
	}
	c.ack(0)
	var out bytes.Buffer
	next := uint16(1)
	dropped := false
	start := time.Now()
	for range 1000 {
		p := c.recv(5 * time.Second)
		if p.Op != opDATA {
			t.Fatalf("got %+v, want DATA", p)
		}
		if p.Block == 3 && !dropped {
			dropped = true
			// Read the rest of the window, then report the gap.
			for range 5 {
				c.recv(5 * time.Second)
			}
			c.ack(2)
			continue
		}
		if p.Block != next {
			continue
		}
		out.Write(p.Data)
		next++
		if len(p.Data) < 100 {
			c.ack(p.Block)
			break
		}
		if (p.Block-2)%8 == 0 && dropped {
			c.ack(p.Block)
		} else if !dropped && p.Block%8 == 0 {
			c.ack(p.Block)
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("got %d bytes, want %d", out.Len(), len(data))
	}
	// The server's timeout is 10 s: finishing sooner proves the gap ACK
	// triggered the resend.
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("transfer took %v: the server waited for a timeout instead of resending", d)
	}
}

// TestBlockBoundaries reads files of 0 bytes and of exact multiples of the
// block size, which end with an empty DATA block.
func TestBlockBoundaries(t *testing.T) {
	files := map[string][]byte{"0": {}, "512": pattern(512), "1024": pattern(1024), "1": pattern(1)}
	srv := startServer(t, &Server{Files: &fakeFiles{files: files}})
	for name, data := range files {
		for _, w := range []int{1, 4} {
			t.Run(name+"/window "+strconv.Itoa(w), func(t *testing.T) {
				c := newRawClient(t, srv)
				c.request(rrq(opRRQ, name, "octet", "windowsize", strconv.Itoa(w)))
				got, _ := readAll(t, c, w)
				if !bytes.Equal(got, data) {
					t.Fatalf("got %d bytes, want %d", len(got), len(data))
				}
			})
		}
	}
}
