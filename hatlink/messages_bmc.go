package hatlink

// The board-management messages: the Pi's power (PowerState, PowerSet;
// PowerCycle is in messages_seal_ab.go) and its serial console as the HAT
// captured it (ConsoleRead). racklet-boot sends them over the HAT's BMC
// port; PROTOCOL.md, "Board management", has the contract.

import "encoding/binary"

// Board-management commands.
const (
	CmdPowerState  Command = 0x10 // is the Pi powered, and its boot counter
	CmdPowerSet    Command = 0x11 // switch the Pi's power on or off
	CmdConsoleRead Command = 0x12 // bytes the HAT captured from the Pi's console UART
)

// MaxConsoleChunk is the most console bytes one ConsoleRead answer carries:
// the answer (boot u64, start u64, data b16) then fills one frame.
const MaxConsoleChunk = MaxPayload - 8 - 8 - 2

// PowerStatus is the answer to PowerState and PowerSet: whether the Pi is
// powered and the boot counter (which PowerSet on increments: every power-on
// is a new boot, with registers at zero).
type PowerStatus struct {
	On      bool
	Counter uint64
}

// Append encodes the message onto dst.
func (m PowerStatus) Append(dst []byte) []byte {
	return binary.LittleEndian.AppendUint64(append(dst, boolByte(m.On)), m.Counter)
}

// Decode parses p into m.
func (m *PowerStatus) Decode(p []byte) error {
	r := reader{p: p}
	on := r.u8()
	m.Counter = r.u64()
	if on > 1 {
		return ErrMalformed
	}
	m.On = on == 1
	return r.done()
}

// PowerRequest asks for the Pi's power on or off (PowerSet).
type PowerRequest struct{ On bool }

// Append encodes the message onto dst.
func (m PowerRequest) Append(dst []byte) []byte { return append(dst, boolByte(m.On)) }

// Decode parses p into m.
func (m *PowerRequest) Decode(p []byte) error {
	r := reader{p: p}
	on := r.u8()
	if on > 1 {
		return ErrMalformed
	}
	m.On = on == 1
	return r.done()
}

// ConsoleRequest asks for console bytes from position (Boot, Offset) on:
// Offset counts the bytes of boot Boot's console from its first. Max bounds
// the answer (at most MaxConsoleChunk).
type ConsoleRequest struct {
	Boot   uint64
	Offset uint64
	Max    uint16
}

// Append encodes the message onto dst.
func (m ConsoleRequest) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, m.Boot)
	dst = binary.LittleEndian.AppendUint64(dst, m.Offset)
	return binary.LittleEndian.AppendUint16(dst, m.Max)
}

// Decode parses p into m.
func (m *ConsoleRequest) Decode(p []byte) error {
	r := reader{p: p}
	m.Boot, m.Offset, m.Max = r.u64(), r.u64(), r.u16()
	return r.done()
}

// ConsoleChunk is the answer to ConsoleRead: Data are the console bytes of
// boot Boot from offset Start on. A chunk never spans two boots. Start above
// the requested offset (or a later Boot) means bytes were lost from the
// HAT's buffer before anyone read them; empty Data means nothing new.
type ConsoleChunk struct {
	Boot  uint64
	Start uint64
	Data  []byte
}

// Append encodes the message onto dst.
func (m ConsoleChunk) Append(dst []byte) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, m.Boot)
	dst = binary.LittleEndian.AppendUint64(dst, m.Start)
	return appendBytes16(dst, m.Data)
}

// Decode parses p into m. Data aliases p.
func (m *ConsoleChunk) Decode(p []byte) error {
	r := reader{p: p}
	m.Boot, m.Start, m.Data = r.u64(), r.u64(), r.bytes16()
	return r.done()
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}
