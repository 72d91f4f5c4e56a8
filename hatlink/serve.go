package hatlink

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Serve is the device side of the framed protocol: it reads request frames
// from rw, answers each with h, and writes the answer frame. A retransmitted
// request (same sequence number and CRC as the last one) gets the cached
// answer again without running h, so a lost answer never runs a command
// twice; Hello clears the cache. When ctx ends Serve closes rw (if it is an
// io.Closer) and returns nil; a read error ends it with that error (io.EOF
// returns nil: the peer hung up).
func Serve(ctx context.Context, rw io.ReadWriter, h Handler) error {
	stop := context.AfterFunc(ctx, func() {
		if c, ok := rw.(io.Closer); ok {
			_ = c.Close()
		}
	})
	defer stop()
	var (
		fr      = newFrameReader(rw)
		out     []byte
		cache   []byte // last answer frame
		lastSeq byte
		lastCRC uint32
		have    bool
		req     = make([]byte, 0, 1+MaxPayload)
	)
	for {
		rerr, werr := fr.readOnce(func(f Frame) error {
			if have && f.Seq == lastSeq && f.CRC == lastCRC {
				_, err := rw.Write(cache)
				return err
			}
			req = append(append(req[:0], f.Type), f.Payload...)
			resp := h.Handle(ctx, req)
			if len(resp) == 0 {
				resp = DeviceError{Code: CodeInternal, Command: Command(f.Type)}.Append([]byte{RespError})
			}
			var err error
			out, err = AppendFrame(out[:0], resp[0], f.Seq, resp[1:])
			if err != nil {
				resp = DeviceError{Code: CodeTooLarge, Command: Command(f.Type), Message: "answer too large"}.Append([]byte{RespError})
				out, _ = AppendFrame(out[:0], resp[0], f.Seq, resp[1:])
			}
			cache = append(cache[:0], out...)
			lastSeq, lastCRC, have = f.Seq, f.CRC, Command(f.Type) != CmdHello
			_, err = rw.Write(out)
			return err
		})
		if werr != nil {
			return writeErr(ctx, werr)
		}
		if rerr != nil {
			if ctx.Err() != nil || errors.Is(rerr, io.EOF) {
				return nil
			}
			return fmt.Errorf("read HAT link: %w", rerr)
		}
	}
}

func writeErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("write HAT link: %w", err)
}
