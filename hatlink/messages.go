package hatlink

import "encoding/binary"

// Command is the first byte of a request message (and of its frame's type).
type Command byte

// Commands. A successful response carries the command with RespFlag set; a
// failure carries RespError.
const (
	CmdHello       Command = 0x01 // version handshake; resets the retransmission cache
	CmdIdentity    Command = 0x02 // keys, firmware version, serial
	CmdExtend      Command = 0x03 // register = sha256(register || digest)
	CmdRead        Command = 0x04 // read registers by mask
	CmdQuote       Command = 0x05 // signed statement over nonce, registers, counters
	CmdSeal        Command = 0x06 // store a secret bound to a register policy
	CmdUnseal      Command = 0x07 // release a sealed secret while the policy holds
	CmdUnwrap      Command = 0x08 // decrypt an envelope addressed to the HAT's box key, under its policy
	CmdBootAttempt Command = 0x09 // count an attempt to boot a slot
	CmdBootCommit  Command = 0x0A // mark a slot good and reset its attempts
	CmdBootState   Command = 0x0B // read the A/B state
	CmdPowerCycle  Command = 0x0C // power-cycle the Pi: registers reset, boot counter +1
	CmdEndBoot     Command = 0x0D // hand-over to the OS: close the boot registers until the next power cycle
)

// Response types.
const (
	RespFlag  = 0x80 // set on the command byte of a successful response
	RespError = 0xFF // an ErrorResponse follows
)

// Protocol versions this package speaks.
const (
	VersionMin = 1
	VersionMax = 1
)

// Register layout. NumRegisters SHA-256 registers exist; the first four hold
// the boot measurements, extended once each, in this order, by the node's
// initramfs agent before anything else runs.
const (
	NumRegisters = 8
	RegKernel    = 0 // sha256 of the kernel image file
	RegInitramfs = 1 // sha256 of the initramfs file
	RegCmdline   = 2 // sha256 of the kernel command line (trimmed of trailing newlines)
	RegRootHash  = 3 // the dm-verity root hash of the root filesystem (32 raw bytes)
	// BootMask selects the four boot measurement registers.
	BootMask byte = 1<<RegKernel | 1<<RegInitramfs | 1<<RegCmdline | 1<<RegRootHash
)

// A/B slots.
const (
	SlotA byte = 0
	SlotB byte = 1
)

// MaxSerial is the longest serial string a HAT reports.
const MaxSerial = 32

// HelloRequest offers a range of protocol versions.
type HelloRequest struct{ Min, Max byte }

// Append encodes the message onto dst.
func (m HelloRequest) Append(dst []byte) []byte { return append(dst, m.Min, m.Max) }

// Decode parses p into m.
func (m *HelloRequest) Decode(p []byte) error {
	r := reader{p: p}
	m.Min, m.Max = r.u8(), r.u8()
	return r.done()
}

// HelloResponse is the version the device chose and its firmware version.
type HelloResponse struct {
	Version  byte
	Firmware uint32
}

// Append encodes the message onto dst.
func (m HelloResponse) Append(dst []byte) []byte {
	return binary.LittleEndian.AppendUint32(append(dst, m.Version), m.Firmware)
}

// Decode parses p into m.
func (m *HelloResponse) Decode(p []byte) error {
	r := reader{p: p}
	m.Version, m.Firmware = r.u8(), r.u32()
	return r.done()
}

// IdentityResponse names the HAT: its Ed25519 signing key, its X25519 box key
// (secrets are encrypted to it), firmware version and serial.
type IdentityResponse struct {
	SignKey   [32]byte
	BoxKey    [32]byte
	Firmware  uint32
	Registers byte
	Serial    string
}

// Append encodes the message onto dst.
func (m IdentityResponse) Append(dst []byte) []byte {
	dst = append(append(dst, m.SignKey[:]...), m.BoxKey[:]...)
	dst = append(binary.LittleEndian.AppendUint32(dst, m.Firmware), m.Registers)
	return appendBytes8(dst, []byte(m.Serial))
}

// Decode parses p into m.
func (m *IdentityResponse) Decode(p []byte) error {
	r := reader{p: p}
	m.SignKey, m.BoxKey = r.digest(), r.digest()
	m.Firmware, m.Registers = r.u32(), r.u8()
	m.Serial = string(r.bytes8())
	return r.done()
}

// ExtendRequest extends one register with a digest.
type ExtendRequest struct {
	Register byte
	Digest   [32]byte
}

// Append encodes the message onto dst.
func (m ExtendRequest) Append(dst []byte) []byte {
	return append(append(dst, m.Register), m.Digest[:]...)
}

// Decode parses p into m.
func (m *ExtendRequest) Decode(p []byte) error {
	r := reader{p: p}
	m.Register, m.Digest = r.u8(), r.digest()
	return r.done()
}

// DigestResponse carries one register value (the answer to Extend).
type DigestResponse struct{ Value [32]byte }

// Append encodes the message onto dst.
func (m DigestResponse) Append(dst []byte) []byte { return append(dst, m.Value[:]...) }

// Decode parses p into m.
func (m *DigestResponse) Decode(p []byte) error {
	r := reader{p: p}
	m.Value = r.digest()
	return r.done()
}

// MaskRequest selects registers (Read).
type MaskRequest struct{ Mask byte }

// Append encodes the message onto dst.
func (m MaskRequest) Append(dst []byte) []byte { return append(dst, m.Mask) }

// Decode parses p into m.
func (m *MaskRequest) Decode(p []byte) error {
	r := reader{p: p}
	m.Mask = r.u8()
	return r.done()
}

// Registers is a set of register values selected by Mask; Values holds all
// NumRegisters slots and only the selected ones are meaningful.
type Registers struct {
	Mask   byte
	Values [NumRegisters][32]byte
}

// Append encodes the selected registers onto dst: the mask, then each
// selected value in ascending register order.
func (m Registers) Append(dst []byte) []byte {
	dst = append(dst, m.Mask)
	for i := range NumRegisters {
		if m.Mask&(1<<i) != 0 {
			dst = append(dst, m.Values[i][:]...)
		}
	}
	return dst
}

// Decode parses p into m.
func (m *Registers) Decode(p []byte) error {
	r := reader{p: p}
	m.decode(&r)
	return r.done()
}

func (m *Registers) decode(r *reader) {
	*m = Registers{Mask: r.u8()}
	for i := range NumRegisters {
		if m.Mask&(1<<i) != 0 {
			m.Values[i] = r.digest()
		}
	}
}

// QuoteRequest asks for a signed statement over the selected registers.
type QuoteRequest struct {
	Nonce [32]byte
	Mask  byte
}

// Append encodes the message onto dst.
func (m QuoteRequest) Append(dst []byte) []byte { return append(append(dst, m.Nonce[:]...), m.Mask) }

// Decode parses p into m.
func (m *QuoteRequest) Decode(p []byte) error {
	r := reader{p: p}
	m.Nonce, m.Mask = r.digest(), r.u8()
	return r.done()
}

// QuoteResponse is the encoded Statement and its Ed25519 signature.
type QuoteResponse struct {
	Statement []byte
	Signature [64]byte
}

// Append encodes the message onto dst.
func (m QuoteResponse) Append(dst []byte) []byte {
	return append(appendBytes16(dst, m.Statement), m.Signature[:]...)
}

// Decode parses p into m. Statement aliases p.
func (m *QuoteResponse) Decode(p []byte) error {
	r := reader{p: p}
	m.Statement = r.bytes16()
	copy(m.Signature[:], r.take(64))
	return r.done()
}
