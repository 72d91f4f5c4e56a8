package hatlink

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// KeyPrefix starts the text form of a HAT signing key.
const KeyPrefix = "ed25519:"

// EncodeKey renders a HAT's Ed25519 public key as operators and the rack
// config write it: "ed25519:" then standard base64.
func EncodeKey(k [32]byte) string {
	return KeyPrefix + base64.StdEncoding.EncodeToString(k[:])
}

// ParseKey reads a key written by EncodeKey (surrounding white space
// ignored). Only the canonical text is accepted: one key has exactly one
// text form, so two texts never name the same key (base64 with stray line
// breaks or non-zero padding bits is refused).
func ParseKey(s string) (ed25519.PublicKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), KeyPrefix)
	if !ok {
		return nil, fmt.Errorf("HAT key %q: want %q followed by base64", s, KeyPrefix)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || len(b) != ed25519.PublicKeySize || strings.ContainsAny(rest, "\r\n") {
		return nil, fmt.Errorf("HAT key %q: want %d bytes of standard base64", s, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
