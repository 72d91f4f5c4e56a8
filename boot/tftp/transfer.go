package tftp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/pin/tftp/v3/netascii"

	"github.com/racklet/racklet-boot/boot/resolve"
)

// prepare readies one admitted read request off the loop: its own socket
// connected to the client, the file from the resolver, the negotiated
// options; then hands it to the loop. Refusals from the resolver are
// answered here, from the transfer's socket.
func (d *dispatcher) prepare(ctx context.Context, req request, info packetInfo, peer netip.AddrPort, firstSeen time.Time, lim limits) {
	start := time.Now()
	res := result{Client: peer.Addr().String(), File: req.Name}
	end := func() {
		res.Duration = time.Since(start)
		d.s.finish(ctx, res)
	}
	fd, err := d.s.dial(info.local, peer)
	if err != nil {
		d.lim.release(peer, req.Name, time.Now())
		res.Outcome, res.Err = OutcomeError, err
		end()
		return
	}
	w := fdWriter(fd)
	f, err := d.s.Files.Open(ctx, resolve.Request{Client: peer.Addr(), Name: req.Name, Via: "tftp"})
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
		res.Err = err
		// The answer goes through the loop like a transfer: while the
		// gate holds the client's requests, it holds its misses too.
		d.start(ctx, &xfer{w: w, fd: fd, peer: peer, firstSeen: firstSeen, heldI: -1,
			reply: appendError(nil, code, msg), res: res})
		return
	}
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
	timeout := orDefault(d.s.Timeout, DefaultTimeout)
	if neg.Timeout > 0 {
		timeout = time.Duration(neg.Timeout) * time.Second
	}
	var src blockSource
	if req.Mode == "netascii" {
		src = &streamSource{r: netascii.ToReader(f.Content)}
	} else {
		src = newBlockSource(d.maps, f.Content, f.Size)
	}
	x := &xfer{
		w:         w,
		fd:        fd,
		src:       src,
		file:      f,
		peer:      peer,
		blksize:   neg.Blksize,
		window:    neg.Windowsize,
		timeout:   timeout,
		retries:   orDefault(d.s.Retries, DefaultRetries),
		idle:      orDefault(d.s.IdleTimeout, DefaultIdleTimeout),
		maxLife:   orDefault(d.s.MaxDuration, DefaultMaxDuration),
		size:      f.Size,
		firstSeen: firstSeen,
		heldI:     -1,
	}
	if len(ack) > 0 {
		x.oack = appendOACK(nil, ack)
	}
	x.res = res
	x.res.Blksize, x.res.Windowsize = neg.Blksize, neg.Windowsize
	d.start(ctx, x)
}

// start hands x to the loop; when the loop is stopping, x ends here.
func (d *dispatcher) start(ctx context.Context, x *xfer) {
	x.start = time.Now() // the loop sets it again when it takes x
	if d.s.Metrics != nil {
		d.s.Metrics.Active.Inc()
	}
	if d.loop.add(x) {
		return
	}
	_ = x.w.write(appendError(nil, errUndefined, "server shutting down"))
	x.reply = nil
	x.fail(errShutdown)
	_ = closeFd(x.fd)
	x.fd = -1
	if x.src != nil {
		x.src.release()
	}
	d.ended(ctx, x, time.Now())
}

// ended reports a transfer the loop finished (or never started): it closes
// the file, frees the admission and logs the result off the loop.
func (d *dispatcher) ended(ctx context.Context, x *xfer, now time.Time) {
	if x.file != nil {
		x.file.Close()
	}
	d.lim.release(x.peer, x.res.File, now)
	if m := d.s.Metrics; m != nil {
		m.Active.Dec()
	}
	res := x.result(now)
	if x.reply != nil {
		res = x.res // a miss or refusal, preset in prepare
		res.Duration = now.Sub(x.start)
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		d.s.finish(ctx, res)
	}()
}

// result describes how x ended.
func (x *xfer) result(now time.Time) result {
	res := x.res
	res.Duration = now.Sub(x.start)
	res.Bytes, res.Sent, res.Timeouts = x.acked, x.sent, x.timeouts
	var cerr *clientError
	switch err := x.err; {
	case err == nil:
		res.Outcome = OutcomeOK
	case errors.As(err, &cerr) && !x.ackedData:
		res.Outcome, res.Err = OutcomeProbe, cerr
	case errors.As(err, &cerr):
		res.Outcome, res.Err = OutcomeAborted, err
	case errors.Is(err, errClientTimeout), errors.Is(err, errTooLong):
		res.Outcome, res.Err = OutcomeTimeout, err
	case errors.Is(err, errShutdown):
		res.Outcome, res.Err = OutcomeError, err
	default:
		res.Outcome, res.Err = OutcomeError, fmt.Errorf("send: %w", err)
	}
	return res
}
