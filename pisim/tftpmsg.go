package pisim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// TFTP opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// TFTP error codes the client sends or branches on.
const (
	tftpErrUndefined = 0
	tftpErrNotFound  = 1
	tftpErrIllegalOp = 4
	tftpErrUnknownID = 5
	tftpErrOptions   = 8
)

// earlyTerminate is the message the Pi firmware sends to end a probe.
const earlyTerminate = "Early terminate"

// errBadTFTP is wrapped by every TFTP decoding error.
var errBadTFTP = errors.New("malformed tftp packet")

// tftpPkt is one decoded TFTP packet; which fields are set depends on Op.
type tftpPkt struct {
	Op    uint16
	Block uint16            // DATA, ACK
	Data  []byte            // DATA
	Code  uint16            // ERROR
	Msg   string            // ERROR
	File  string            // RRQ, WRQ
	Mode  string            // RRQ, WRQ
	Opts  map[string]string // RRQ, WRQ, OACK; keys lower-case
}

// parseTFTP decodes one TFTP datagram.
func parseTFTP(b []byte) (*tftpPkt, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes", errBadTFTP, len(b))
	}
	p := &tftpPkt{Op: binary.BigEndian.Uint16(b)}
	body := b[2:]
	switch p.Op {
	case opDATA, opACK:
		if len(body) < 2 {
			return nil, fmt.Errorf("%w: opcode %d without block number", errBadTFTP, p.Op)
		}
		p.Block = binary.BigEndian.Uint16(body)
		if p.Op == opDATA {
			p.Data = body[2:]
		} else if len(body) > 2 {
			return nil, fmt.Errorf("%w: ack with %d trailing bytes", errBadTFTP, len(body)-2)
		}
	case opERROR:
		if len(body) < 2 {
			return nil, fmt.Errorf("%w: error without code", errBadTFTP)
		}
		p.Code = binary.BigEndian.Uint16(body)
		// Some servers omit the final NUL; accept the text either way.
		p.Msg = cString(body[2:])
	case opRRQ, opWRQ, opOACK:
		fields, err := nulFields(body)
		if err != nil {
			return nil, err
		}
		if p.Op != opOACK {
			if len(fields) < 2 {
				return nil, fmt.Errorf("%w: request without file name and mode", errBadTFTP)
			}
			p.File, p.Mode = fields[0], strings.ToLower(fields[1])
			fields = fields[2:]
		}
		if len(fields)%2 != 0 {
			return nil, fmt.Errorf("%w: option %q has no value", errBadTFTP, fields[len(fields)-1])
		}
		p.Opts = map[string]string{}
		for i := 0; i < len(fields); i += 2 {
			p.Opts[strings.ToLower(fields[i])] = fields[i+1]
		}
	default:
		return nil, fmt.Errorf("%w: unknown opcode %d", errBadTFTP, p.Op)
	}
	return p, nil
}

// nulFields splits NUL-terminated strings; the last one must be terminated.
func nulFields(b []byte) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[len(b)-1] != 0 {
		return nil, fmt.Errorf("%w: string not NUL-terminated", errBadTFTP)
	}
	parts := bytes.Split(b[:len(b)-1], []byte{0})
	out := make([]string, len(parts))
	for i, s := range parts {
		out[i] = string(s)
	}
	return out, nil
}

// rrqPacket encodes a read request; opts are name, value pairs in order.
func rrqPacket(file string, opts ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, opRRQ)
	for _, s := range append([]string{file, "octet"}, opts...) {
		b = append(b, s...)
		b = append(b, 0)
	}
	return b
}

// ackPacket encodes ACK block.
func ackPacket(block uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, opACK)
	return binary.BigEndian.AppendUint16(b, block)
}

// errorPacket encodes ERROR code with msg.
func errorPacket(code uint16, msg string) []byte {
	b := binary.BigEndian.AppendUint16(nil, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	b = append(b, msg...)
	return append(b, 0)
}
