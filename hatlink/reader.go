package hatlink

import (
	"io"
	"time"
)

// frameReader reads frames off a byte stream through a Decoder. A frame the
// line went quiet in the middle of (longer than IdleGap) is dropped, as a
// UART receiver would: the sender retransmits it whole.
type frameReader struct {
	r    io.Reader
	d    Decoder
	buf  []byte
	last time.Time
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: r, buf: make([]byte, 256), last: time.Now()}
}

// readOnce does one Read and hands every frame completed by it to each, in
// order. It returns the Read's error, or the first error each returned
// (then the rest of the bytes read stay unparsed).
func (fr *frameReader) readOnce(each func(Frame) error) (readErr, eachErr error) {
	n, readErr := fr.r.Read(fr.buf)
	now := time.Now()
	if n > 0 && fr.d.Buffered() > 0 && now.Sub(fr.last) > IdleGap {
		fr.d.Reset() // the line went quiet mid-frame: that frame is lost
	}
	fr.last = now
	p := fr.buf[:n]
	for len(p) > 0 {
		k := fr.d.Feed(p)
		p = p[k:]
		for {
			f, ok := fr.d.Next()
			if !ok {
				break
			}
			if err := each(f); err != nil {
				return readErr, err
			}
		}
	}
	return readErr, nil
}
