package pisim

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrBootSig means boot.sig is malformed, does not match boot.img, or is
// not signed by the key in the EEPROM: the bootloader refuses the image.
var ErrBootSig = errors.New("boot.sig refused")

// maxSigFile is the most of a boot.sig the simulator reads.
const maxSigFile = 4096

// bootSig is what the bootloader takes from boot.sig: the image's SHA-256
// (first line, hex) and the rsa2048 line's PKCS#1 v1.5 signature of it.
// "ts:" and other lines are read past; the firmware uses ts only to order
// updates.
type bootSig struct {
	sum [32]byte
	sig []byte // nil when there is no rsa2048 line
}

// parseBootSig reads boot.sig as rpi-eeprom-digest writes it.
func parseBootSig(b []byte) (*bootSig, error) {
	if len(b) > maxSigFile {
		return nil, fmt.Errorf("%w: %d bytes is too long", ErrBootSig, len(b))
	}
	lines := strings.Split(strings.ReplaceAll(string(b), "\r", ""), "\n")
	first := strings.TrimSpace(lines[0])
	if len(first) != 64 {
		return nil, fmt.Errorf("%w: first line is not a sha256 in hex", ErrBootSig)
	}
	var s bootSig
	if _, err := hex.Decode(s.sum[:], []byte(first)); err != nil {
		return nil, fmt.Errorf("%w: first line is not a sha256 in hex", ErrBootSig)
	}
	for _, l := range lines[1:] {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "rsa2048:")
		if !ok {
			continue
		}
		sig, err := hex.DecodeString(strings.TrimSpace(v))
		if err != nil || len(sig) != 256 {
			return nil, fmt.Errorf("%w: rsa2048 line is not 256 bytes of hex", ErrBootSig)
		}
		s.sig = sig
	}
	return &s, nil
}

// check verifies an image digest against the signature file and the key
// the EEPROM holds, as the bootloader does before it uses boot.img.
func (s *bootSig) check(sum []byte, key *rsa.PublicKey) error {
	switch {
	case key == nil:
		return fmt.Errorf("%w: no public key in the EEPROM (rpi-eeprom-config --pubkey)", ErrBootSig)
	case s.sig == nil:
		return fmt.Errorf("%w: no rsa2048 signature", ErrBootSig)
	case !bytes.Equal(sum, s.sum[:]):
		return fmt.Errorf("%w: boot.img sha256 %x, boot.sig says %x", ErrBootSig, sum, s.sum)
	}
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, sum, s.sig); err != nil {
		return fmt.Errorf("%w: rsa2048 signature does not verify with the EEPROM key", ErrBootSig)
	}
	return nil
}
