package hatlink

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// QuoteContext is the domain-separation prefix every signed statement starts
// with, so a quote signature can never be mistaken for any other signature.
const QuoteContext = "RACKLET-HAT-QUOTE-V1\x00"

// PolicyContext prefixes the register policy digest.
const PolicyContext = "RACKLET-HAT-POLICY-V1\x00"

// Errors from quote verification.
var (
	ErrBadStatement = errors.New("quote statement is malformed")
	ErrBadSignature = errors.New("quote signature does not verify against the enrolled HAT key")
)

// Statement is what a HAT signs in a quote. Its encoding (Append) is, in order:
//
//	QuoteContext (21 bytes)
//	nonce        32 bytes
//	mask         1 byte, then 32 bytes per selected register, ascending
//	boot counter u64 little-endian
//	firmware     u32 little-endian
//	box key      32 bytes (X25519; secrets are encrypted to it)
//	serial       1-byte length, then the bytes
type Statement struct {
	Nonce       [32]byte
	Registers   Registers
	BootCounter uint64
	Firmware    uint32
	BoxKey      [32]byte
	Serial      string
}

// Append encodes s onto dst.
func (s Statement) Append(dst []byte) []byte {
	dst = append(append(dst, QuoteContext...), s.Nonce[:]...)
	dst = s.Registers.Append(dst)
	dst = binary.LittleEndian.AppendUint64(dst, s.BootCounter)
	dst = binary.LittleEndian.AppendUint32(dst, s.Firmware)
	dst = append(dst, s.BoxKey[:]...)
	return appendBytes8(dst, []byte(s.Serial))
}

// ParseStatement decodes an encoded statement.
func ParseStatement(p []byte) (Statement, error) {
	var s Statement
	r := reader{p: p}
	if string(r.take(len(QuoteContext))) != QuoteContext {
		return s, fmt.Errorf("%w: wrong context prefix", ErrBadStatement)
	}
	s.Nonce = r.digest()
	s.Registers.decode(&r)
	s.BootCounter, s.Firmware = r.u64(), r.u32()
	s.BoxKey = r.digest()
	s.Serial = string(r.bytes8())
	if err := r.done(); err != nil {
		return Statement{}, fmt.Errorf("%w: truncated or trailing bytes", ErrBadStatement)
	}
	return s, nil
}

// VerifyQuote checks sig over statement with the HAT's Ed25519 public key and
// returns the parsed statement.
func VerifyQuote(pub ed25519.PublicKey, statement []byte, sig []byte) (Statement, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Statement{}, fmt.Errorf("HAT public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	s, err := ParseStatement(statement)
	if err != nil {
		return Statement{}, err
	}
	if !ed25519.Verify(pub, statement, sig) {
		return Statement{}, ErrBadSignature
	}
	return s, nil
}

// ExtendValue returns the register value after extending old with digest:
// sha256(old || digest).
func ExtendValue(old, digest [32]byte) [32]byte {
	var b [64]byte
	copy(b[:32], old[:])
	copy(b[32:], digest[:])
	return sha256.Sum256(b[:])
}

// PolicyDigest is the value a sealed secret or envelope is bound to:
// sha256(PolicyContext || mask || selected register values, ascending).
func PolicyDigest(r Registers) [32]byte {
	h := sha256.New()
	h.Write([]byte(PolicyContext))
	var tmp [1 + NumRegisters*32]byte
	h.Write(r.Append(tmp[:0]))
	var d [32]byte
	h.Sum(d[:0])
	return d
}
