package squashfs

import "encoding/binary"

const (
	metaBlockSize    = 8192
	metaUncompressed = 0x8000
)

// metaWriter builds a run of metadata blocks in memory: 8 KiB chunks, each compressed when that
// helps, with a u16 header holding the stored length (bit 15 set when stored uncompressed).
type metaWriter struct {
	comp compressor
	buf  []byte // pending uncompressed bytes of the current block
	out  []byte // finished blocks
	// starts lists the offset in out of every finished block.
	starts []uint64
	// written counts the uncompressed bytes written so far.
	written int
	err     error
}

// ref is the position of the next byte: (block start << 16) | offset in the block.
func (m *metaWriter) ref() uint64 {
	return uint64(len(m.out))<<16 | uint64(len(m.buf))
}

func (m *metaWriter) write(p []byte) {
	m.written += len(p)
	m.buf = append(m.buf, p...)
	for len(m.buf) >= metaBlockSize {
		m.flush(metaBlockSize)
	}
}

func (m *metaWriter) flush(n int) {
	block := m.buf[:n]
	m.starts = append(m.starts, uint64(len(m.out)))
	c, err := m.comp.compress(block)
	if err != nil && m.err == nil {
		m.err = err
	}
	if err == nil && len(c) < len(block) {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(c)))
		m.out = append(m.out, c...)
	} else {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(block))|metaUncompressed)
		m.out = append(m.out, block...)
	}
	m.buf = append(m.buf[:0], m.buf[n:]...)
}

// finish flushes the last partial block and returns all blocks.
func (m *metaWriter) finish() ([]byte, error) {
	if len(m.buf) > 0 {
		m.flush(len(m.buf))
	}
	return m.out, m.err
}

// le is a little-endian appender for inode and directory records.
type le []byte

func (b le) u16(v uint16) le { return binary.LittleEndian.AppendUint16(b, v) }
func (b le) u32(v uint32) le { return binary.LittleEndian.AppendUint32(b, v) }
func (b le) u64(v uint64) le { return binary.LittleEndian.AppendUint64(b, v) }
