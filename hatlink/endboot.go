package hatlink

import (
	"context"
	"crypto/sha256"
)

// HandoverContext is hashed into HandoverDigest, the separator EndBoot
// extends into every boot register.
const HandoverContext = "RACKLET-HAT-HANDOVER-V1\x00"

// HandoverDigest is what EndBoot extends into each boot register:
// sha256(HandoverContext). After it, the registers can never again show the
// values of a measured boot that has not ended, so a quote taken by the
// running OS is not a quote of a pristine boot.
var HandoverDigest = sha256.Sum256([]byte(HandoverContext))

// HandedOver returns the boot registers r become after EndBoot: each
// register of BootMask in r extended with HandoverDigest, the others as
// they were.
func HandedOver(r Registers) Registers {
	for i := range NumRegisters {
		if BootMask&(1<<i) != 0 && r.Mask&(1<<i) != 0 {
			r.Values[i] = ExtendValue(r.Values[i], HandoverDigest)
		}
	}
	return r
}

// EndBoot tells the HAT that the measured boot is over and the OS takes
// over: the HAT extends HandoverDigest into the boot registers (BootMask)
// and refuses further extends of them (ErrLocked) until it power-cycles the
// Pi. Registers outside BootMask stay open. Secrets bound to the boot
// registers (Unwrap, Unseal) can no longer be opened, and a new quote no
// longer matches the image's measurements. A second EndBoot in the same boot
// changes nothing. It returns the boot registers after the hand-over.
//
// The node agent calls it once it has attested, right before switch_root.
func (c *Client) EndBoot(ctx context.Context) (Registers, error) {
	var r Registers
	return r, c.call(ctx, CmdEndBoot, nil, &r)
}
