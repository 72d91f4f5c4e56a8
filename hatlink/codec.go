package hatlink

import (
	"encoding/binary"
	"errors"
)

// ErrMalformed is returned when a message payload cannot be decoded.
var ErrMalformed = errors.New("malformed HAT message")

// reader decodes a payload field by field without allocating; the first
// short read sets err and every later read returns zero values.
type reader struct {
	p   []byte
	err bool
}

func (r *reader) take(n int) []byte {
	if r.err || n < 0 || len(r.p) < n {
		r.err = true
		return nil
	}
	b := r.p[:n]
	r.p = r.p[n:]
	return b
}

func (r *reader) u8() byte {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (r *reader) digest() (d [32]byte) {
	copy(d[:], r.take(32))
	return d
}

// bytes8 reads a byte string with a one-byte length prefix.
func (r *reader) bytes8() []byte { return r.take(int(r.u8())) }

// bytes16 reads a byte string with a two-byte length prefix.
func (r *reader) bytes16() []byte { return r.take(int(r.u16())) }

// done reports an error unless the whole payload was consumed exactly.
func (r *reader) done() error {
	if r.err || len(r.p) != 0 {
		return ErrMalformed
	}
	return nil
}

func appendBytes8(dst, b []byte) []byte {
	if len(b) > 255 {
		b = b[:255]
	}
	return append(append(dst, byte(len(b))), b...)
}

func appendBytes16(dst, b []byte) []byte {
	return append(binary.LittleEndian.AppendUint16(dst, uint16(len(b))), b...)
}
