package hatlink

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Transport carries one request message (command byte + payload) to a HAT
// and returns its response message (response type + payload). Link is the
// framed byte-stream transport; Direct calls a Handler in process.
type Transport interface {
	Send(ctx context.Context, msg []byte) ([]byte, error)
}

// Handler is the device side: it answers one request message. The simulator
// implements it; firmware would too.
type Handler interface {
	Handle(ctx context.Context, req []byte) []byte
}

// Errors a Link returns.
var (
	ErrTimeout = errors.New("HAT did not answer (timed out after all retries)")
	ErrClosed  = errors.New("HAT link closed")
)

// Defaults for Link.
const (
	DefaultTimeout = time.Second
	DefaultRetries = 4
)

// Link is the host side of the framed protocol over a byte stream (a UART, a
// pseudo-terminal, a socket). It sends one request at a time, retransmits with
// the same sequence number when no answer arrives within Timeout, and ignores
// answers to other sequence numbers. Set the exported fields before the first
// Send.
type Link struct {
	// Timeout is how long one attempt waits for an answer (default DefaultTimeout).
	Timeout time.Duration
	// Retries is how many times a request is resent after the first attempt
	// (default DefaultRetries; negative means none).
	Retries int
	// Logger receives retransmission and resync notes; nil discards.
	Logger *slog.Logger

	rw      io.ReadWriter
	mu      sync.Mutex // one request in flight
	seq     byte
	frames  chan Frame
	done    chan struct{}
	readErr error
	stats   DecoderStats
	statsMu sync.Mutex
	wbuf    []byte
}

// NewLink starts a link over rw; a reader goroutine runs until rw returns an
// error or Close is called.
func NewLink(rw io.ReadWriter) *Link {
	var s [1]byte
	_, _ = rand.Read(s[:])
	l := &Link{rw: rw, seq: s[0], frames: make(chan Frame, 8), done: make(chan struct{})}
	go l.readLoop()
	return l
}

func (l *Link) logger() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

func (l *Link) readLoop() {
	defer close(l.done)
	fr := newFrameReader(l.rw)
	for {
		err, _ := fr.readOnce(func(f Frame) error {
			f.Payload = append([]byte(nil), f.Payload...)
			select {
			case l.frames <- f:
			default: // nobody waiting for this many frames: stale answers, drop
			}
			return nil
		})
		l.statsMu.Lock()
		l.stats = fr.d.Stats
		l.statsMu.Unlock()
		if err != nil {
			l.readErr = err
			return
		}
	}
}

// Stats returns what the link's decoder has discarded so far.
func (l *Link) Stats() DecoderStats {
	l.statsMu.Lock()
	defer l.statsMu.Unlock()
	return l.stats
}

// Close closes the underlying stream if it is an io.Closer and waits for the
// reader to stop.
func (l *Link) Close() error {
	var err error
	if c, ok := l.rw.(io.Closer); ok {
		err = c.Close()
		<-l.done
	}
	return err
}

// Send implements Transport.
func (l *Link) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if len(msg) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrMalformed)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	seq := l.seq
	var err error
	l.wbuf, err = AppendFrame(l.wbuf[:0], msg[0], seq, msg[1:])
	if err != nil {
		return nil, err
	}
	timeout, retries := l.Timeout, l.Retries
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if retries == 0 {
		retries = DefaultRetries
	} else if retries < 0 {
		retries = 0
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for attempt := 0; attempt <= retries; attempt++ {
		if attempt > 0 {
			l.logger().Debug("hat retransmit", "cmd", msg[0], "seq", seq, "attempt", attempt)
		}
		if _, err := l.rw.Write(l.wbuf); err != nil {
			return nil, fmt.Errorf("write to HAT: %w", err)
		}
		timer.Reset(timeout)
	wait:
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-l.done:
				return nil, fmt.Errorf("%w: %v", ErrClosed, l.readErr)
			case <-timer.C:
				break wait
			case f := <-l.frames:
				if f.Seq != seq || (f.Type != msg[0]|RespFlag && f.Type != RespError) {
					continue // a late answer to an earlier request
				}
				return append([]byte{f.Type}, f.Payload...), nil
			}
		}
	}
	return nil, fmt.Errorf("%w: command 0x%02x, %d attempts of %v", ErrTimeout, msg[0], retries+1, timeout)
}

// Direct returns a Transport that calls h in process, without framing: the
// reference every framed transport is tested against.
func Direct(h Handler) Transport { return direct{h} }

type direct struct{ h Handler }

func (d direct) Send(ctx context.Context, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return d.h.Handle(ctx, append([]byte(nil), msg...)), nil
}
