package hatsim

import (
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/hatlink"
)

// FuzzHandle sends arbitrary requests to the device, as line noise that
// passed the CRC or a hostile Pi would: it must always answer, with the
// command's answer type or an error, and the answer must fit in one frame.
func FuzzHandle(f *testing.F) {
	d, err := Open(filepath.Join(f.TempDir(), "hat.json"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{byte(hatlink.CmdHello), 1, 1})
	f.Add(append([]byte{byte(hatlink.CmdExtend), 9}, make([]byte, 32)...))
	f.Add(append([]byte{byte(hatlink.CmdQuote)}, make([]byte, 33)...))
	f.Add([]byte{byte(hatlink.CmdUnwrap), 5, 0, 1, 2, 3, 4, 5})
	f.Add([]byte{byte(hatlink.CmdSeal), 0xFF})
	f.Add([]byte{byte(hatlink.CmdBootAttempt), 1})
	f.Add([]byte{byte(hatlink.CmdEndBoot)})
	f.Add(append([]byte{byte(hatlink.CmdExtend), 0}, make([]byte, 32)...))
	f.Add(append([]byte{byte(hatlink.CmdConsoleRead)}, make([]byte, 18)...))
	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) > 1+hatlink.MaxPayload {
			return // cannot arrive in one frame
		}
		if len(req) > 0 && (hatlink.Command(req[0]) == hatlink.CmdPowerCycle || hatlink.Command(req[0]) == hatlink.CmdSeal ||
			hatlink.Command(req[0]) == hatlink.CmdPowerSet) {
			return // state writes: covered by unit tests, too slow to fuzz
		}
		resp := d.Handle(t.Context(), req)
		if len(resp) == 0 || len(resp) > 1+hatlink.MaxPayload {
			t.Fatalf("answer of %d bytes to %x", len(resp), req)
		}
		if resp[0] == hatlink.RespError {
			var e hatlink.DeviceError
			if err := e.Decode(resp[1:]); err != nil {
				t.Fatalf("undecodable error answer %x", resp)
			}
			return
		}
		if resp[0] != req[0]|hatlink.RespFlag {
			t.Fatalf("answer type %#x to command %#x", resp[0], req[0])
		}
	})
}
