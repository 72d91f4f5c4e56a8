package hatlink

// The messages of sealed secrets (Seal, Unseal, Unwrap), of the A/B slots
// and boot counter (BootState, BootAttempt, BootCommit, PowerCycle), and
// the device's error answer. messages.go has the handshake and the
// measurement messages.

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// SealRequest stores Secret on the HAT, releasable only while the registers
// selected by Mask hash to Policy (see PolicyDigest).
type SealRequest struct {
	Mask   byte
	Policy [32]byte
	Secret []byte
}

// Append encodes the message onto dst.
func (m SealRequest) Append(dst []byte) []byte {
	return appendBytes16(append(append(dst, m.Mask), m.Policy[:]...), m.Secret)
}

// Decode parses p into m. Secret aliases p.
func (m *SealRequest) Decode(p []byte) error {
	r := reader{p: p}
	m.Mask, m.Policy, m.Secret = r.u8(), r.digest(), r.bytes16()
	return r.done()
}

// HandleMessage names a sealed secret (Seal's answer, Unseal's request).
type HandleMessage struct{ Handle uint16 }

// Append encodes the message onto dst.
func (m HandleMessage) Append(dst []byte) []byte {
	return binary.LittleEndian.AppendUint16(dst, m.Handle)
}

// Decode parses p into m.
func (m *HandleMessage) Decode(p []byte) error {
	r := reader{p: p}
	m.Handle = r.u16()
	return r.done()
}

// BlobMessage carries one byte string: a secret (Unseal and Unwrap answers)
// or an envelope (Unwrap request).
type BlobMessage struct{ Data []byte }

// Append encodes the message onto dst.
func (m BlobMessage) Append(dst []byte) []byte { return appendBytes16(dst, m.Data) }

// Decode parses p into m. Data aliases p.
func (m *BlobMessage) Decode(p []byte) error {
	r := reader{p: p}
	m.Data = r.bytes16()
	return r.done()
}

// SlotRequest names an A/B slot (BootAttempt, BootCommit).
type SlotRequest struct{ Slot byte }

// Append encodes the message onto dst.
func (m SlotRequest) Append(dst []byte) []byte { return append(dst, m.Slot) }

// Decode parses p into m.
func (m *SlotRequest) Decode(p []byte) error {
	r := reader{p: p}
	m.Slot = r.u8()
	return r.done()
}

// BootState is the HAT's A/B view: the committed slot, the slot the Pi should
// boot next (the trial slot while it has attempts left, else Committed),
// the attempt limit and the attempts counted per slot. Allowed answers
// BootAttempt: false means the limit was reached and the Pi must fall back to
// Committed.
type BootState struct {
	Committed byte
	Next      byte
	Limit     byte
	Attempts  [2]byte
	Allowed   bool
	Counter   uint64 // monotonic boot counter
}

// Append encodes the message onto dst.
func (m BootState) Append(dst []byte) []byte {
	allowed := byte(0)
	if m.Allowed {
		allowed = 1
	}
	dst = append(dst, m.Committed, m.Next, m.Limit, m.Attempts[0], m.Attempts[1], allowed)
	return binary.LittleEndian.AppendUint64(dst, m.Counter)
}

// Decode parses p into m.
func (m *BootState) Decode(p []byte) error {
	r := reader{p: p}
	m.Committed, m.Next, m.Limit = r.u8(), r.u8(), r.u8()
	m.Attempts[0], m.Attempts[1] = r.u8(), r.u8()
	m.Allowed = r.u8() != 0
	m.Counter = r.u64()
	if m.Committed > SlotB || m.Next > SlotB {
		return ErrMalformed
	}
	return r.done()
}

// CounterMessage carries the boot counter (PowerCycle's answer).
type CounterMessage struct{ Counter uint64 }

// Append encodes the message onto dst.
func (m CounterMessage) Append(dst []byte) []byte {
	return binary.LittleEndian.AppendUint64(dst, m.Counter)
}

// Decode parses p into m.
func (m *CounterMessage) Decode(p []byte) error {
	r := reader{p: p}
	m.Counter = r.u64()
	return r.done()
}

// ErrorCode says why the device refused a request.
type ErrorCode byte

// Error codes.
const (
	CodeMalformed ErrorCode = 1  // the request payload did not decode
	CodeUnknown   ErrorCode = 2  // unknown command
	CodeVersion   ErrorCode = 3  // no common protocol version
	CodeRegister  ErrorCode = 4  // register index or mask out of range
	CodePolicy    ErrorCode = 5  // registers do not match the secret's policy
	CodeNoHandle  ErrorCode = 6  // no sealed secret with that handle
	CodeFull      ErrorCode = 7  // sealed-secret store full
	CodeDecrypt   ErrorCode = 8  // envelope not addressed to this HAT or corrupted
	CodeSlot      ErrorCode = 9  // slot out of range
	CodeInternal  ErrorCode = 10 // the device failed (flash write, ...)
	CodeTooLarge  ErrorCode = 11 // secret or envelope too large
)

var codeText = map[ErrorCode]string{
	CodeMalformed: "malformed request", CodeUnknown: "unknown command", CodeVersion: "no common protocol version",
	CodeRegister: "bad register", CodePolicy: "registers do not match the policy", CodeNoHandle: "no such sealed secret",
	CodeFull: "sealed-secret store full", CodeDecrypt: "envelope cannot be opened by this HAT", CodeSlot: "bad slot",
	CodeInternal: "device failure", CodeTooLarge: "too large",
}

// DeviceError is a refusal reported by the HAT. errors.Is matches it against
// the Err* sentinels by code.
type DeviceError struct {
	Code    ErrorCode
	Command Command
	Message string
}

// Error implements error.
func (e *DeviceError) Error() string {
	t := codeText[e.Code]
	if t == "" {
		t = fmt.Sprintf("error %d", e.Code)
	}
	if e.Message != "" {
		return fmt.Sprintf("HAT refused command 0x%02x: %s: %s", byte(e.Command), t, e.Message)
	}
	return fmt.Sprintf("HAT refused command 0x%02x: %s", byte(e.Command), t)
}

// Is matches sentinels by code.
func (e *DeviceError) Is(target error) bool {
	var t *DeviceError
	return errors.As(target, &t) && t.Code == e.Code
}

// Sentinels for errors.Is.
var (
	ErrPolicyMismatch = &DeviceError{Code: CodePolicy}
	ErrNoHandle       = &DeviceError{Code: CodeNoHandle}
	ErrDecrypt        = &DeviceError{Code: CodeDecrypt}
	ErrBadRegister    = &DeviceError{Code: CodeRegister}
	ErrBadSlot        = &DeviceError{Code: CodeSlot}
	ErrUnknownCommand = &DeviceError{Code: CodeUnknown}
)

// Append encodes the error onto dst: code, command, message (≤ 255 bytes).
func (e DeviceError) Append(dst []byte) []byte {
	return appendBytes8(append(dst, byte(e.Code), byte(e.Command)), []byte(e.Message))
}

// Decode parses p into e.
func (e *DeviceError) Decode(p []byte) error {
	r := reader{p: p}
	e.Code, e.Command = ErrorCode(r.u8()), Command(r.u8())
	e.Message = string(r.bytes8())
	return r.done()
}
