package hatlink

import (
	"context"
	"fmt"
)

// Client speaks the HAT command set over a Transport. Create it with
// NewClient, which performs the version handshake.
type Client struct {
	t        Transport
	version  byte
	firmware uint32
	buf      []byte
}

// NewClient performs the version handshake over t.
func NewClient(ctx context.Context, t Transport) (*Client, error) {
	c := &Client{t: t}
	var h HelloResponse
	if err := c.call(ctx, CmdHello, HelloRequest{Min: VersionMin, Max: VersionMax}.Append(nil), &h); err != nil {
		return nil, fmt.Errorf("HAT handshake: %w", err)
	}
	if h.Version < VersionMin || h.Version > VersionMax {
		return nil, fmt.Errorf("HAT handshake: device chose protocol version %d, we speak %d..%d", h.Version, VersionMin, VersionMax)
	}
	c.version, c.firmware = h.Version, h.Firmware
	return c, nil
}

// Version is the negotiated protocol version.
func (c *Client) Version() byte { return c.version }

// Firmware is the firmware version the device reported in the handshake.
func (c *Client) Firmware() uint32 { return c.firmware }

type decoder interface{ Decode([]byte) error }

// call sends cmd with payload and decodes the answer into out.
func (c *Client) call(ctx context.Context, cmd Command, payload []byte, out decoder) error {
	c.buf = append(append(c.buf[:0], byte(cmd)), payload...)
	resp, err := c.t.Send(ctx, c.buf)
	if err != nil {
		return err
	}
	if len(resp) == 0 {
		return fmt.Errorf("%w: empty answer to command 0x%02x", ErrMalformed, byte(cmd))
	}
	switch resp[0] {
	case RespError:
		var e DeviceError
		if err := e.Decode(resp[1:]); err != nil {
			return fmt.Errorf("%w: undecodable error answer", ErrMalformed)
		}
		return &e
	case byte(cmd) | RespFlag:
		if err := out.Decode(resp[1:]); err != nil {
			return fmt.Errorf("answer to command 0x%02x: %w", byte(cmd), err)
		}
		return nil
	default:
		return fmt.Errorf("%w: answer type 0x%02x to command 0x%02x", ErrMalformed, resp[0], byte(cmd))
	}
}

type empty struct{}

func (empty) Decode(p []byte) error {
	if len(p) != 0 {
		return ErrMalformed
	}
	return nil
}

// Identity returns the HAT's keys, firmware version and serial.
func (c *Client) Identity(ctx context.Context) (IdentityResponse, error) {
	var r IdentityResponse
	return r, c.call(ctx, CmdIdentity, nil, &r)
}

// Extend extends register reg with digest and returns the new value.
func (c *Client) Extend(ctx context.Context, reg byte, digest [32]byte) ([32]byte, error) {
	var r DigestResponse
	err := c.call(ctx, CmdExtend, ExtendRequest{Register: reg, Digest: digest}.Append(nil), &r)
	return r.Value, err
}

// Read returns the registers selected by mask.
func (c *Client) Read(ctx context.Context, mask byte) (Registers, error) {
	var r Registers
	return r, c.call(ctx, CmdRead, MaskRequest{Mask: mask}.Append(nil), &r)
}

// Quote asks for a signed statement over nonce and the registers in mask.
func (c *Client) Quote(ctx context.Context, nonce [32]byte, mask byte) (QuoteResponse, error) {
	var r QuoteResponse
	if err := c.call(ctx, CmdQuote, QuoteRequest{Nonce: nonce, Mask: mask}.Append(nil), &r); err != nil {
		return r, err
	}
	r.Statement = append([]byte(nil), r.Statement...)
	return r, nil
}

// Seal stores secret on the HAT bound to policy (the register values it may
// be released under) and returns its handle.
func (c *Client) Seal(ctx context.Context, policy Registers, secret []byte) (uint16, error) {
	var r HandleMessage
	err := c.call(ctx, CmdSeal, SealRequest{Mask: policy.Mask, Policy: PolicyDigest(policy), Secret: secret}.Append(nil), &r)
	return r.Handle, err
}

// Unseal returns a sealed secret; the HAT refuses (ErrPolicyMismatch) unless
// its registers match the secret's policy.
func (c *Client) Unseal(ctx context.Context, handle uint16) ([]byte, error) {
	var r BlobMessage
	if err := c.call(ctx, CmdUnseal, HandleMessage{Handle: handle}.Append(nil), &r); err != nil {
		return nil, err
	}
	return append([]byte(nil), r.Data...), nil
}

// Unwrap asks the HAT to open an envelope made by Wrap; it refuses
// (ErrPolicyMismatch) unless its registers match the envelope's policy.
func (c *Client) Unwrap(ctx context.Context, envelope []byte) ([]byte, error) {
	var r BlobMessage
	if err := c.call(ctx, CmdUnwrap, BlobMessage{Data: envelope}.Append(nil), &r); err != nil {
		return nil, err
	}
	return append([]byte(nil), r.Data...), nil
}

// BootAttempt counts an attempt to boot slot. State.Allowed is false when the
// slot has used up its attempts: boot State.Committed instead.
func (c *Client) BootAttempt(ctx context.Context, slot byte) (BootState, error) {
	var r BootState
	return r, c.call(ctx, CmdBootAttempt, SlotRequest{Slot: slot}.Append(nil), &r)
}

// BootCommit marks slot good: it becomes the committed slot and its attempts reset.
func (c *Client) BootCommit(ctx context.Context, slot byte) (BootState, error) {
	var r BootState
	return r, c.call(ctx, CmdBootCommit, SlotRequest{Slot: slot}.Append(nil), &r)
}

// BootState returns the A/B state.
func (c *Client) BootState(ctx context.Context) (BootState, error) {
	var r BootState
	return r, c.call(ctx, CmdBootState, nil, &r)
}

// PowerCycle power-cycles the Pi: the registers reset and the boot counter
// increments. It returns the new boot counter.
func (c *Client) PowerCycle(ctx context.Context) (uint64, error) {
	var r CounterMessage
	err := c.call(ctx, CmdPowerCycle, nil, &r)
	return r.Counter, err
}

// PowerState reports whether the Pi is powered, and its boot counter.
func (c *Client) PowerState(ctx context.Context) (PowerStatus, error) {
	var r PowerStatus
	return r, c.call(ctx, CmdPowerState, nil, &r)
}

// PowerSet switches the Pi's power. Switching it on starts a new boot: the
// registers are zero and the boot counter increments. Asking for the state
// it is already in changes nothing.
func (c *Client) PowerSet(ctx context.Context, on bool) (PowerStatus, error) {
	var r PowerStatus
	return r, c.call(ctx, CmdPowerSet, PowerRequest{On: on}.Append(nil), &r)
}

// ConsoleRead returns the console bytes the HAT holds from (boot, offset)
// on, at most max (capped at MaxConsoleChunk).
func (c *Client) ConsoleRead(ctx context.Context, boot, offset uint64, max int) (ConsoleChunk, error) {
	max = min(max, MaxConsoleChunk)
	var r ConsoleChunk
	if err := c.call(ctx, CmdConsoleRead, ConsoleRequest{Boot: boot, Offset: offset, Max: uint16(max)}.Append(nil), &r); err != nil {
		return r, err
	}
	r.Data = append([]byte(nil), r.Data...)
	return r, nil
}
