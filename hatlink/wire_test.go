package hatlink_test

import (
	"io"
	"math/rand/v2"
	"sync"
)

// pipeEnd is one end of an in-memory byte link.
type pipeEnd struct {
	r *io.PipeReader
	w io.Writer
	c []io.Closer
}

func (p *pipeEnd) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeEnd) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeEnd) Close() error {
	for _, c := range p.c {
		c.Close()
	}
	return nil
}

// noise says how a lossy wire mangles bytes.
type noise struct {
	Drop, Flip, Insert float64 // per byte
	TruncateEvery      int     // every Nth write loses its second half (0: never)
	BurstEvery         int     // every Nth write is preceded by garbage and a fake oversized header
	MaxChunk           int     // writes reach the reader in pieces of 1..MaxChunk bytes
}

// lossyWriter is one direction of a lossy wire.
type lossyWriter struct {
	mu     sync.Mutex
	w      *io.PipeWriter
	rng    *rand.Rand
	n      noise
	writes int
}

func (l *lossyWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	out := make([]byte, 0, len(p)+32)
	if l.n.BurstEvery > 0 && l.writes%l.n.BurstEvery == 0 {
		// A stray sync, a header with a bad checksum, and a header with a
		// good checksum but an impossible length.
		out = append(out, 0x00, 0xA5, 0x13, 0xA5, 0x5A, 0xFF, 0xFF, 0x01, 0x02, 0x00, 0xA5, 0x5A)
		out = append(out, 0xA5, 0x5A, 0xFF, 0x7F, 0x01, 0x02, crc8([]byte{0xFF, 0x7F, 0x01, 0x02}))
		for range l.rng.IntN(20) {
			out = append(out, byte(l.rng.UintN(256)))
		}
	}
	in := p
	if l.n.TruncateEvery > 0 && l.writes%l.n.TruncateEvery == 0 {
		in = p[:len(p)/2]
	}
	for _, b := range in {
		if l.rng.Float64() < l.n.Insert {
			out = append(out, byte(l.rng.UintN(256)))
		}
		if l.rng.Float64() < l.n.Drop {
			continue
		}
		if l.rng.Float64() < l.n.Flip {
			b ^= 1 << l.rng.UintN(8)
		}
		out = append(out, b)
	}
	for len(out) > 0 {
		k := min(len(out), 1+l.rng.IntN(max(l.n.MaxChunk, 1)))
		if _, err := l.w.Write(out[:k]); err != nil {
			return 0, err
		}
		out = out[k:]
	}
	return len(p), nil
}

// lossyPair returns two connected ends; bytes between them suffer n.
func lossyPair(seed uint64, n noise) (host, dev io.ReadWriteCloser) {
	h2dR, h2dW := io.Pipe()
	d2hR, d2hW := io.Pipe()
	hw := &lossyWriter{w: h2dW, rng: rand.New(rand.NewPCG(seed, 1)), n: n}
	dw := &lossyWriter{w: d2hW, rng: rand.New(rand.NewPCG(seed, 2)), n: n}
	host = &pipeEnd{r: d2hR, w: hw, c: []io.Closer{d2hR, h2dW}}
	dev = &pipeEnd{r: h2dR, w: dw, c: []io.Closer{h2dR, d2hW}}
	return host, dev
}

// crc8 is CRC-8/SMBUS, as the frame header uses, to forge believable headers.
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

// lossyPairs is lossyPair with separate noise per direction.
func lossyPairs(seed uint64, toDev, toHost noise) (host, dev io.ReadWriteCloser) {
	h2dR, h2dW := io.Pipe()
	d2hR, d2hW := io.Pipe()
	hw := &lossyWriter{w: h2dW, rng: rand.New(rand.NewPCG(seed, 1)), n: toDev}
	dw := &lossyWriter{w: d2hW, rng: rand.New(rand.NewPCG(seed, 2)), n: toHost}
	host = &pipeEnd{r: d2hR, w: hw, c: []io.Closer{d2hR, h2dW}}
	dev = &pipeEnd{r: h2dR, w: dw, c: []io.Closer{h2dR, d2hW}}
	return host, dev
}
