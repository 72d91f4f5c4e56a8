package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   = 1
	opWRQ   = 2
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// Error codes (RFC 1350, RFC 2347).
const (
	errUndefined   uint16 = 0
	errNotFound    uint16 = 1
	errAccess      uint16 = 2
	errIllegal     uint16 = 4
	errOptionsDeny uint16 = 8
)

// Protocol limits.
const (
	maxNameLen     = 255   // longest file name accepted
	minBlksize     = 8     // RFC 2348
	maxBlksize     = 65464 // RFC 2348
	defaultBlksize = 512   // RFC 1350
	maxWindowsize  = 65535 // RFC 7440
)

// errMalformed is wrapped by parse errors for requests that are not valid
// TFTP read or write requests.
var errMalformed = errors.New("malformed request")

// request is a parsed RRQ or WRQ.
type request struct {
	Op      uint16
	Name    string
	Mode    string // lower-cased
	Options []option
}

// option is one request option, name lower-cased, in request order.
type option struct {
	Name  string
	Value string
}

// requestError is a parse error together with the TFTP error to answer.
type requestError struct {
	Code uint16
	Msg  string
}

func (e *requestError) Error() string { return e.Msg }
func (e *requestError) Unwrap() error { return errMalformed }

// parseRequest parses an RRQ or WRQ datagram. Errors are *requestError.
func parseRequest(b []byte) (request, error) {
	if len(b) < 2 {
		return request{}, &requestError{errIllegal, "short packet"}
	}
	op := binary.BigEndian.Uint16(b)
	if op != opRRQ && op != opWRQ {
		return request{}, &requestError{errIllegal, fmt.Sprintf("opcode %d is not a request", op)}
	}
	rest := b[2:]
	if len(rest) == 0 || rest[len(rest)-1] != 0 {
		return request{}, &requestError{errIllegal, "request does not end with NUL"}
	}
	fields := bytes.Split(rest[:len(rest)-1], []byte{0})
	if len(fields) < 2 {
		return request{}, &requestError{errIllegal, "request has no mode"}
	}
	r := request{Op: op, Name: string(fields[0]), Mode: strings.ToLower(string(fields[1]))}
	if r.Name == "" {
		return request{}, &requestError{errIllegal, "empty file name"}
	}
	if len(r.Name) > maxNameLen {
		return request{}, &requestError{errAccess, fmt.Sprintf("file name longer than %d bytes", maxNameLen)}
	}
	if r.Mode != "octet" && r.Mode != "netascii" {
		return request{}, &requestError{errIllegal, fmt.Sprintf("transfer mode %.20q not supported (octet or netascii)", r.Mode)}
	}
	opts := fields[2:]
	for i := 0; i < len(opts); i += 2 {
		name := strings.ToLower(string(opts[i]))
		if name == "" && allEmpty(opts[i:]) {
			break // NUL padding after the last option
		}
		if i+1 >= len(opts) {
			return request{}, &requestError{errIllegal, fmt.Sprintf("option %.20q has no value", name)}
		}
		for _, o := range r.Options {
			if o.Name == name {
				return request{}, &requestError{errOptionsDeny, fmt.Sprintf("duplicate option %.20q", name)}
			}
		}
		r.Options = append(r.Options, option{Name: name, Value: string(opts[i+1])})
	}
	return r, nil
}

func allEmpty(fs [][]byte) bool {
	for _, f := range fs {
		if len(f) > 0 {
			return false
		}
	}
	return true
}

// limits are the server's caps for one request.
type limits struct {
	MaxBlksize int // already lowered to the path MTU when known
	MaxWindow  int
}

// negotiated is the outcome of option negotiation.
type negotiated struct {
	Blksize    int
	Windowsize int
	Timeout    int  // seconds, 0 when the client did not ask
	WantTsize  bool // reply tsize with the file size
	Ack        []option
}

// negotiate picks the transfer parameters from the request's options. It
// never fails: invalid options are left out of the OACK, as RFC 2347 lets a
// server do. Ack keeps the request's order; the tsize value is filled in by
// the caller once the file size is known.
func negotiate(r request, lim limits) negotiated {
	n := negotiated{Blksize: defaultBlksize, Windowsize: 1}
	for _, o := range r.Options {
		v, err := strconv.ParseInt(o.Value, 10, 64)
		if err != nil {
			continue
		}
		switch o.Name {
		case "blksize":
			if v < minBlksize {
				continue
			}
			b := min(v, maxBlksize, int64(lim.MaxBlksize))
			n.Blksize = int(b)
			n.Ack = append(n.Ack, option{o.Name, strconv.Itoa(n.Blksize)})
		case "tsize":
			if v < 0 || r.Mode != "octet" {
				continue
			}
			n.WantTsize = true
			n.Ack = append(n.Ack, option{o.Name, ""})
		case "timeout":
			// RFC 2349 allows 1..255 s, but an OACK must echo the
			// client's value: past the cap the option is left out and
			// the client keeps its default.
			if v < 1 || v > MaxTimeoutOption {
				continue
			}
			n.Timeout = int(v)
			n.Ack = append(n.Ack, option{o.Name, strconv.Itoa(n.Timeout)})
		case "windowsize":
			if v < 1 || r.Mode != "octet" {
				continue
			}
			w := min(v, maxWindowsize, int64(max(lim.MaxWindow, 1)))
			n.Windowsize = int(w)
			n.Ack = append(n.Ack, option{o.Name, strconv.Itoa(n.Windowsize)})
		}
	}
	return n
}

// appendOACK appends an OACK packet carrying opts to b.
func appendOACK(b []byte, opts []option) []byte {
	b = binary.BigEndian.AppendUint16(b, opOACK)
	for _, o := range opts {
		b = append(b, o.Name...)
		b = append(b, 0)
		b = append(b, o.Value...)
		b = append(b, 0)
	}
	return b
}

// appendError appends an ERROR packet to b. Long messages are cut.
func appendError(b []byte, code uint16, msg string) []byte {
	if len(msg) > 200 {
		msg = msg[:200]
	}
	msg = strings.ReplaceAll(msg, "\x00", " ")
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, code)
	b = append(b, msg...)
	return append(b, 0)
}

// clientError is a TFTP ERROR packet received from the client.
type clientError struct {
	Code uint16
	Msg  string
}

func (e *clientError) Error() string {
	return fmt.Sprintf("client sent error %d %q", e.Code, e.Msg)
}

// parseError decodes an ERROR packet's code and message (b starts at the opcode).
func parseError(b []byte) *clientError {
	e := &clientError{}
	if len(b) >= 4 {
		e.Code = binary.BigEndian.Uint16(b[2:])
		e.Msg = string(bytes.TrimRight(b[4:], "\x00"))
	}
	return e
}
