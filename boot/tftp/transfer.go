package tftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/pin/tftp/v3/netascii"

	"github.com/racklet/racklet-boot/boot/resolve"
)

// transfer serves one read request on its own socket, connected to the
// client, and reports the result.
func (s *Server) transfer(ctx context.Context, req request, info packetInfo, client netip.Addr, lim limits) {
	start := time.Now()
	res := result{Client: client.String(), File: req.Name}
	if m := s.Metrics; m != nil {
		m.Active.Inc()
		defer m.Active.Dec()
	}
	defer func() {
		res.Duration = time.Since(start)
		s.finish(ctx, res)
	}()

	dial := s.Dial
	if dial == nil {
		dial = func(laddr, raddr *net.UDPAddr) (*net.UDPConn, error) { return net.DialUDP("udp", laddr, raddr) }
	}
	conn, err := dial(&net.UDPAddr{IP: info.local}, info.peer)
	if err != nil && info.local != nil {
		conn, err = dial(nil, info.peer)
	}
	if err != nil {
		res.Outcome, res.Err = OutcomeError, fmt.Errorf("open transfer socket: %w", err)
		return
	}
	defer conn.Close()
	// On shutdown, tell the client and unblock the sender.
	stop := context.AfterFunc(ctx, func() {
		_, _ = conn.Write(appendError(nil, errUndefined, "server shutting down"))
		conn.Close()
	})
	defer stop()

	f, err := s.Files.Open(ctx, resolve.Request{Client: client, Name: req.Name, Via: "tftp"})
	if err != nil {
		code, msg := errNotFound, "file not found"
		res.Outcome = OutcomeNotFound
		switch {
		case errors.Is(err, os.ErrNotExist):
		case errors.Is(err, resolve.ErrRefused):
			code, msg, res.Outcome = errAccess, "access violation", OutcomeRefused
		default:
			code, msg, res.Outcome = errUndefined, "server error opening file", OutcomeError
		}
		_, _ = conn.Write(appendError(nil, code, msg))
		res.Err = err
		return
	}
	defer f.Close()
	res.Node = f.Node

	neg := negotiate(req, lim)
	ack := neg.Ack[:0]
	for _, o := range neg.Ack {
		if o.Name == "tsize" {
			if f.Size < 0 {
				continue // size unknown: leave tsize out of the OACK
			}
			o.Value = strconv.FormatInt(f.Size, 10)
		}
		ack = append(ack, o)
	}
	neg.Ack = ack
	timeout := orDefault(s.Timeout, DefaultTimeout)
	if neg.Timeout > 0 {
		timeout = time.Duration(neg.Timeout) * time.Second
	}
	var src blockSource = &seekSource{r: f.Content}
	if req.Mode == "netascii" {
		src = &streamSource{r: netascii.ToReader(f.Content)}
	}
	snd := &sender{
		conn:    conn,
		src:     src,
		blksize: neg.Blksize,
		window:  neg.Windowsize,
		timeout: timeout,
		retries: orDefault(s.Retries, DefaultRetries),
	}
	res.Blksize, res.Windowsize = neg.Blksize, neg.Windowsize
	err = snd.run(neg.Ack)
	res.Bytes, res.Sent, res.Timeouts = snd.acked, snd.sent, snd.timeouts
	var cerr *clientError
	switch {
	case err == nil:
		res.Outcome = OutcomeOK
	case errors.As(err, &cerr) && !snd.ackedData:
		res.Outcome = OutcomeProbe
		res.Err = cerr
	case errors.As(err, &cerr):
		res.Outcome, res.Err = OutcomeAborted, err
	case errors.Is(err, errClientTimeout):
		res.Outcome, res.Err = OutcomeTimeout, err
	case ctx.Err() != nil:
		res.Outcome, res.Err = OutcomeError, fmt.Errorf("server shutting down: %w", ctx.Err())
	default:
		res.Outcome, res.Err = OutcomeError, err
	}
}

// blockSource yields the file's blocks by absolute index (1-based). A block
// shorter than p is the last one.
type blockSource interface {
	block(idx int64, p []byte) (int, error)
}

// seekSource reads blocks from a seekable file, seeking only when the
// sender goes back to resend.
type seekSource struct {
	r   io.ReadSeeker
	pos int64
}

func (s *seekSource) block(idx int64, p []byte) (int, error) {
	off := (idx - 1) * int64(len(p))
	if off != s.pos {
		if _, err := s.r.Seek(off, io.SeekStart); err != nil {
			return 0, fmt.Errorf("seek to block %d: %w", idx, err)
		}
		s.pos = off
	}
	n, err := io.ReadFull(s.r, p)
	s.pos += int64(n)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	if err != nil {
		return n, fmt.Errorf("read block %d: %w", idx, err)
	}
	return n, nil
}

// streamSource reads blocks from a reader that cannot seek, such as the
// netascii translation. It serves the current block again or the next one,
// which is all a lock-step (windowsize 1) sender asks for.
type streamSource struct {
	r   io.Reader
	cur int64
	buf []byte
	n   int
}

func (s *streamSource) block(idx int64, p []byte) (int, error) {
	if s.buf == nil {
		s.buf = make([]byte, len(p))
	}
	switch idx {
	case s.cur:
	case s.cur + 1:
		n, err := io.ReadFull(s.r, s.buf)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = nil
		}
		if err != nil {
			return 0, fmt.Errorf("read block %d: %w", idx, err)
		}
		s.cur, s.n = idx, n
	default:
		return 0, fmt.Errorf("netascii transfer cannot go back to block %d from %d", idx, s.cur)
	}
	return copy(p, s.buf[:s.n]), nil
}
