package hatlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Frame layout constants. A frame is
//
//	A5 5A | len u16le | type | seq | hcrc | payload[len] | crc32 u32le
//
// where hcrc is CRC-8 (poly 0x07, init 0) over len, type and seq, and crc32
// is CRC-32/IEEE over every byte from len to the end of the payload.
const (
	Sync0       = 0xA5 // first sync byte
	Sync1       = 0x5A // second sync byte
	HeaderSize  = 7    // sync(2) len(2) type(1) seq(1) hcrc(1)
	TrailerSize = 4    // crc32
	MaxFrame    = 512  // largest frame on the wire, header and trailer included
	// MaxPayload is the largest payload a frame carries.
	MaxPayload = MaxFrame - HeaderSize - TrailerSize
)

// ErrPayloadTooLarge is returned when a payload does not fit in one frame.
var ErrPayloadTooLarge = errors.New("payload does not fit in one HAT frame")

// Frame is one decoded frame. Payload aliases the decoder's buffer and is
// valid until the next call to Decoder.Next.
type Frame struct {
	Type    byte
	Seq     byte
	Payload []byte
	CRC     uint32 // the frame's CRC-32, used by the device to spot retransmissions
}

// crc8 is CRC-8/SMBUS (poly 0x07, init 0, no reflection), small enough for firmware.
func crc8(p []byte) byte {
	var c byte
	for _, b := range p {
		c ^= b
		for range 8 {
			if c&0x80 != 0 {
				c = c<<1 ^ 0x07
			} else {
				c <<= 1
			}
		}
	}
	return c
}

// AppendFrame appends the encoded frame to dst and returns the extended slice.
func AppendFrame(dst []byte, typ, seq byte, payload []byte) ([]byte, error) {
	if len(payload) > MaxPayload {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), MaxPayload)
	}
	start := len(dst)
	dst = append(dst, Sync0, Sync1, byte(len(payload)), byte(len(payload)>>8), typ, seq)
	dst = append(dst, crc8(dst[start+2:start+6]))
	dst = append(dst, payload...)
	sum := crc32.ChecksumIEEE(dst[start+2:])
	return binary.LittleEndian.AppendUint32(dst, sum), nil
}

// DecoderStats counts what a decoder threw away while resynchronising.
type DecoderStats struct {
	Frames    int // good frames returned
	Skipped   int // bytes discarded while hunting for a sync pattern or after an error
	BadHeader int // header checksum failures
	Oversize  int // length fields above MaxPayload
	BadCRC    int // frame checksum failures
}

// Decoder turns a byte stream into frames. It never allocates, holds at most
// two frames of input, and resynchronises after line noise, truncated frames,
// bad lengths or bad checksums by dropping one byte and hunting for the next
// sync pattern. The zero value is ready to use.
type Decoder struct {
	buf   [2 * MaxFrame]byte
	n     int
	out   [MaxPayload]byte
	Stats DecoderStats
}

// Feed copies as much of p as fits into the decoder and returns how many
// bytes it took. Call Next until it reports false before feeding again.
func (d *Decoder) Feed(p []byte) int {
	k := copy(d.buf[d.n:], p)
	d.n += k
	return k
}

// IdleGap is how long a line may stay silent in the middle of a frame. A
// reader that sees a longer gap while the decoder holds a partial frame
// calls Reset: the sender gave up on that frame (as Modbus RTU's 3.5-character
// silence rule, with margin for sockets and pseudo-terminals).
const IdleGap = 50 * time.Millisecond

// Buffered is how many undecoded bytes the decoder holds.
func (d *Decoder) Buffered() int { return d.n }

// Reset discards any buffered partial input.
func (d *Decoder) Reset() {
	d.Stats.Skipped += d.n
	d.n = 0
}

// drop discards the first k buffered bytes.
func (d *Decoder) drop(k int) {
	copy(d.buf[:], d.buf[k:d.n])
	d.n -= k
}

// Next returns the next complete, valid frame, or false when more input is needed.
func (d *Decoder) Next() (Frame, bool) {
	for {
		// Hunt for the sync pattern.
		i := 0
		for i < d.n && !(d.buf[i] == Sync0 && (i+1 == d.n || d.buf[i+1] == Sync1)) {
			i++
		}
		if i > 0 {
			d.Stats.Skipped += i
			d.drop(i)
		}
		if d.n < HeaderSize {
			return Frame{}, false
		}
		if crc8(d.buf[2:6]) != d.buf[6] {
			d.Stats.BadHeader++
			d.Stats.Skipped++
			d.drop(1)
			continue
		}
		n := int(binary.LittleEndian.Uint16(d.buf[2:4]))
		if n > MaxPayload {
			d.Stats.Oversize++
			d.Stats.Skipped++
			d.drop(1)
			continue
		}
		total := HeaderSize + n + TrailerSize
		if d.n < total {
			return Frame{}, false
		}
		sum := crc32.ChecksumIEEE(d.buf[2 : HeaderSize+n])
		if binary.LittleEndian.Uint32(d.buf[HeaderSize+n:total]) != sum {
			d.Stats.BadCRC++
			d.Stats.Skipped++
			d.drop(1)
			continue
		}
		f := Frame{Type: d.buf[4], Seq: d.buf[5], CRC: sum}
		copy(d.out[:], d.buf[HeaderSize:HeaderSize+n])
		f.Payload = d.out[:n]
		d.drop(total)
		d.Stats.Frames++
		return f, true
	}
}
