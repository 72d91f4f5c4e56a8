package hatsim

import (
	"bytes"
	"context"
	"crypto/ed25519"

	"github.com/racklet/racklet-boot/hatlink"
)

type appender interface{ Append([]byte) []byte }

func ok(cmd hatlink.Command, m appender) []byte {
	return m.Append([]byte{byte(cmd) | hatlink.RespFlag})
}

// handle runs one command with d.mu held.
func (d *Device) handle(ctx context.Context, cmd hatlink.Command, p []byte) ([]byte, error) {
	malformed := deviceErr(hatlink.CodeMalformed, "payload does not decode")
	switch cmd {
	case hatlink.CmdHello:
		var m hatlink.HelloRequest
		if m.Decode(p) != nil {
			return nil, malformed
		}
		if m.Min > hatlink.VersionMax || m.Max < hatlink.VersionMin || m.Min > m.Max {
			return nil, deviceErr(hatlink.CodeVersion, "device speaks %d..%d", hatlink.VersionMin, hatlink.VersionMax)
		}
		return ok(cmd, hatlink.HelloResponse{Version: min(m.Max, hatlink.VersionMax), Firmware: d.st.Firmware}), nil

	case hatlink.CmdIdentity:
		if len(p) != 0 {
			return nil, malformed
		}
		return ok(cmd, d.identity()), nil

	case hatlink.CmdExtend:
		var m hatlink.ExtendRequest
		if m.Decode(p) != nil {
			return nil, malformed
		}
		if m.Register >= hatlink.NumRegisters {
			return nil, deviceErr(hatlink.CodeRegister, "register %d, the HAT has %d", m.Register, hatlink.NumRegisters)
		}
		if d.ended && hatlink.BootMask&(1<<m.Register) != 0 {
			return nil, deviceErr(hatlink.CodeLocked, "register %d: the boot ended; power-cycle to measure a new boot", m.Register)
		}
		d.regs[m.Register] = hatlink.ExtendValue(d.regs[m.Register], m.Digest)
		return ok(cmd, hatlink.DigestResponse{Value: d.regs[m.Register]}), nil

	case hatlink.CmdEndBoot:
		if len(p) != 0 {
			return nil, malformed
		}
		if !d.ended {
			d.ended = true
			for i := range hatlink.NumRegisters {
				if hatlink.BootMask&(1<<i) != 0 {
					d.regs[i] = hatlink.ExtendValue(d.regs[i], hatlink.HandoverDigest)
				}
			}
			d.log.Info("hat boot ended: boot registers closed until the next power cycle")
		}
		return ok(cmd, d.registers(hatlink.BootMask)), nil

	case hatlink.CmdRead:
		var m hatlink.MaskRequest
		if m.Decode(p) != nil {
			return nil, malformed
		}
		return ok(cmd, d.registers(m.Mask)), nil

	case hatlink.CmdQuote:
		var m hatlink.QuoteRequest
		if m.Decode(p) != nil {
			return nil, malformed
		}
		id := d.identity()
		st := hatlink.Statement{Nonce: m.Nonce, Registers: d.registers(m.Mask), BootCounter: d.st.BootCounter,
			Firmware: d.st.Firmware, BoxKey: id.BoxKey, Serial: d.st.Serial}
		body := st.Append(nil)
		q := hatlink.QuoteResponse{Statement: body}
		copy(q.Signature[:], ed25519.Sign(d.sign, body))
		return ok(cmd, q), nil

	case hatlink.CmdSeal:
		return d.seal(p)

	case hatlink.CmdUnseal:
		var m hatlink.HandleMessage
		if m.Decode(p) != nil {
			return nil, malformed
		}
		for _, it := range d.st.Sealed {
			if it.Handle != m.Handle {
				continue
			}
			pd := hatlink.PolicyDigest(d.registers(it.Mask))
			if !bytes.Equal(pd[:], it.Policy) {
				return nil, deviceErr(hatlink.CodePolicy, "registers differ from the sealed policy")
			}
			return ok(cmd, hatlink.BlobMessage{Data: it.Secret}), nil
		}
		return nil, deviceErr(hatlink.CodeNoHandle, "handle %d", m.Handle)

	case hatlink.CmdUnwrap:
		var m hatlink.BlobMessage
		if m.Decode(p) != nil {
			return nil, malformed
		}
		mask, policy, err := hatlink.EnvelopePolicy(m.Data)
		if err != nil {
			return nil, deviceErr(hatlink.CodeDecrypt, "%v", err)
		}
		if hatlink.PolicyDigest(d.registers(mask)) != policy {
			return nil, deviceErr(hatlink.CodePolicy, "registers differ from the envelope's policy")
		}
		secret, err := hatlink.Unwrap(d.box, m.Data)
		if err != nil {
			return nil, deviceErr(hatlink.CodeDecrypt, "%v", err)
		}
		return ok(cmd, hatlink.BlobMessage{Data: secret}), nil

	case hatlink.CmdBootAttempt, hatlink.CmdBootCommit:
		var m hatlink.SlotRequest
		if m.Decode(p) != nil {
			return nil, malformed
		}
		if m.Slot > hatlink.SlotB {
			return nil, deviceErr(hatlink.CodeSlot, "slot %d, only 0 (A) and 1 (B) exist", m.Slot)
		}
		if cmd == hatlink.CmdBootCommit {
			return d.bootCommit(m.Slot)
		}
		return d.bootAttempt(m.Slot)

	case hatlink.CmdBootState:
		if len(p) != 0 {
			return nil, malformed
		}
		return ok(cmd, d.bootState(true)), nil

	case hatlink.CmdPowerCycle:
		if len(p) != 0 {
			return nil, malformed
		}
		n, err := d.powerCycle()
		if err != nil {
			return nil, err
		}
		return ok(cmd, hatlink.CounterMessage{Counter: n}), nil

	case hatlink.CmdPowerState:
		if len(p) != 0 {
			return nil, malformed
		}
		return ok(cmd, d.powerStatus()), nil

	case hatlink.CmdPowerSet:
		var m hatlink.PowerRequest
		if m.Decode(p) != nil {
			return nil, malformed
		}
		st, err := d.setPower(ctx, m.On)
		if err != nil {
			return nil, err
		}
		return ok(cmd, st), nil
	}
	return nil, deviceErr(hatlink.CodeUnknown, "command 0x%02x", byte(cmd))
}

func (d *Device) seal(p []byte) ([]byte, error) {
	var m hatlink.SealRequest
	if m.Decode(p) != nil {
		return nil, deviceErr(hatlink.CodeMalformed, "payload does not decode")
	}
	if len(m.Secret) > MaxSealedSize {
		return nil, deviceErr(hatlink.CodeTooLarge, "secret of %d bytes, limit %d", len(m.Secret), MaxSealedSize)
	}
	if len(d.st.Sealed) >= MaxSealed {
		return nil, deviceErr(hatlink.CodeFull, "%d secrets stored", MaxSealed)
	}
	next := d.st.clone()
	h := next.NextHandle
	next.NextHandle++
	if next.NextHandle == 0 {
		next.NextHandle = 1
	}
	next.Sealed = append(next.Sealed, sealedItem{Handle: h, Mask: m.Mask,
		Policy: append([]byte(nil), m.Policy[:]...), Secret: append([]byte(nil), m.Secret...)})
	if err := d.commit(next); err != nil {
		return nil, err
	}
	return ok(hatlink.CmdSeal, hatlink.HandleMessage{Handle: h}), nil
}

func (d *Device) bootAttempt(slot byte) ([]byte, error) {
	if slot == d.st.Committed {
		return ok(hatlink.CmdBootAttempt, d.bootState(true)), nil
	}
	if d.st.Attempts[slot] >= d.st.Limit {
		d.log.Warn("hat attempt limit reached: fall back", "slot", slot, "committed", d.st.Committed)
		return ok(hatlink.CmdBootAttempt, d.bootState(false)), nil
	}
	next := d.st.clone()
	next.Attempts[slot]++
	if err := d.commit(next); err != nil {
		return nil, err
	}
	s := d.bootState(true)
	s.Next = slot // this boot is the trial
	return ok(hatlink.CmdBootAttempt, s), nil
}

func (d *Device) bootCommit(slot byte) ([]byte, error) {
	next := d.st.clone()
	next.Committed = slot
	next.Attempts = [2]byte{}
	if err := d.commit(next); err != nil {
		return nil, err
	}
	return ok(hatlink.CmdBootCommit, d.bootState(true)), nil
}

func (d *Device) consoleRead(p []byte) []byte {
	var m hatlink.ConsoleRequest
	if m.Decode(p) != nil {
		return refuse(hatlink.CmdConsoleRead, hatlink.CodeMalformed, "payload does not decode")
	}
	c := d.console.read(m.Boot, m.Offset, min(int(m.Max), hatlink.MaxConsoleChunk))
	return ok(hatlink.CmdConsoleRead, c)
}
