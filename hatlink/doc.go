// Package hatlink is the wire protocol between a Raspberry Pi and the RP2040
// on its Racklet HAT, over a byte stream (the Pi's UART): CRC-checked frames
// that resynchronise after noise, request/answer with retransmission and
// duplicate suppression, a version handshake, and the command set of a small
// TPM (Identity, Extend, Read, Quote, Seal/Unseal, Unwrap, BootAttempt/
// BootCommit/BootState, PowerCycle, EndBoot) and the board-management commands
// racklet-boot sends on the HAT's second port (PowerState, PowerSet,
// ConsoleRead). PROTOCOL.md beside this file is the
// byte-level contract.
//
// The host side is Link (a Transport over an io.ReadWriter) with Client on
// top; the device side is Serve with a Handler (hatsim is the reference
// device). Direct joins a Client to a Handler in process. Encoding is
// hand-written, fixed-layout and allocation-light so firmware can share it.
package hatlink
