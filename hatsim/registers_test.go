package hatsim

import (
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/hatlink"
)

// registerModel is what the registers must hold after a sequence of
// commands if they are only ever extended: a hash chain per register, reset
// only by a power cycle, the boot registers closed by EndBoot.
type registerModel struct {
	regs  [hatlink.NumRegisters][32]byte
	ended bool
}

func (m *registerModel) extend(reg byte, d [32]byte) bool {
	if reg >= hatlink.NumRegisters || (m.ended && hatlink.BootMask&(1<<reg) != 0) {
		return false
	}
	m.regs[reg] = hatlink.ExtendValue(m.regs[reg], d)
	return true
}

func (m *registerModel) endBoot() {
	if !m.ended {
		r := hatlink.HandedOver(hatlink.Registers{Mask: 0xFF, Values: m.regs})
		m.regs, m.ended = r.Values, true
	}
}

// stateless commands are sent raw by the fuzzer: none of them may change a
// register (the ones that write flash are left out, for speed).
var stateless = []hatlink.Command{hatlink.CmdHello, hatlink.CmdIdentity, hatlink.CmdRead, hatlink.CmdQuote,
	hatlink.CmdUnseal, hatlink.CmdUnwrap, hatlink.CmdBootState, 0x00, 0x0E, 0x7F, 0x83, 0xFF}

// FuzzRegisterChain drives the device with a command sequence decoded from
// the input: extends (of valid and invalid registers), EndBoot, power
// cycles and arbitrary requests of every other kind. After each command the
// registers must equal the model's hash chains: no sequence of requests
// sets a register to a chosen value, reopens a closed boot register, or
// changes one without an Extend.
func FuzzRegisterChain(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 0, 1, 3, 4, 0, 2, 5, 6, 0, 3, 7, 8, 1, 0, 0, 9, 9})              // measure, end, try again
	f.Add([]byte{0, 0, 1, 2, 1, 2, 0, 0, 1, 2})                                               // end, power cycle, measure
	f.Add([]byte{3, 3, 33, 0, 3, 0x0D, 1, 0, 0, 4, 1, 1, 0, 8, 0, 0})                         // raw Extend/EndBoot sent as other commands
	f.Add([]byte{3, 4, 1, 0xFF, 3, 5, 33, 1, 2, 3, 3, 8, 3, 0, 1, 2, 0, 1, 0, 0, 1, 2, 1, 1}) // read, quote, unwrap junk
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 256 {
			return
		}
		d, err := Open(filepath.Join(t.TempDir(), "hat.json"), Options{Serial: "5b154510"})
		if err != nil {
			t.Fatal(err)
		}
		var m registerModel
		cycles := 0
		for i := 0; i < len(prog); {
			op := prog[i] % 4
			arg := func(k int) byte {
				if i+k < len(prog) {
					return prog[i+k]
				}
				return 0
			}
			switch op {
			case 0: // Extend register arg(1) % 9 (8 is out of range) with a digest from two bytes
				reg, digest := arg(1)%9, sha256.Sum256([]byte{arg(2), arg(3)})
				resp := d.Handle(t.Context(), append([]byte{byte(hatlink.CmdExtend), reg}, digest[:]...))
				if applied := m.extend(reg, digest); applied != (resp[0] == byte(hatlink.CmdExtend)|hatlink.RespFlag) {
					t.Fatalf("extend of register %d (ended %v): answer %x, model applied %v", reg, m.ended, resp, applied)
				}
				i += 4
			case 1:
				d.Handle(t.Context(), []byte{byte(hatlink.CmdEndBoot)})
				m.endBoot()
				i++
			case 2:
				if cycles < 2 {
					cycles++
					d.Handle(t.Context(), []byte{byte(hatlink.CmdPowerCycle)})
					m = registerModel{}
				}
				i++
			case 3: // any other request, with up to 40 bytes of payload
				cmd := stateless[int(arg(1))%len(stateless)]
				n := int(arg(2)) % 41
				end := min(i+3+n, len(prog))
				d.Handle(t.Context(), append([]byte{byte(cmd)}, prog[min(i+3, end):end]...))
				i = end
			}
			var got hatlink.Registers
			resp := d.Handle(t.Context(), []byte{byte(hatlink.CmdRead), 0xFF})
			if err := got.Decode(resp[1:]); err != nil {
				t.Fatalf("read registers: %x", resp)
			}
			if got.Values != m.regs {
				t.Fatalf("after op %d at %d registers %x, want the hash chains %x", op, i, got.Values, m.regs)
			}
		}
	})
}
