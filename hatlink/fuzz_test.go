package hatlink

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"strings"
	"testing"
)

// FuzzParseKey: whatever ParseKey accepts is a 32-byte key whose canonical
// text is the input (white space trimmed): one key, one text.
func FuzzParseKey(f *testing.F) {
	f.Add(EncodeKey([32]byte{1, 2, 3}))
	f.Add(" ed25519:AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
	f.Add("ed25519:AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")   // non-zero padding bits
	f.Add("ed25519:AQIDAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAA=") // a line break inside
	f.Add("ed25519:")
	f.Add("ssh-ed25519 AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if len(k) != 32 {
			t.Fatalf("ParseKey(%q) = %d bytes", s, len(k))
		}
		if enc := EncodeKey([32]byte(k)); enc != strings.TrimSpace(s) {
			t.Fatalf("ParseKey(%q) accepted a second text for the key %s", s, enc)
		}
	})
}

// fuzzBoxKey is a fixed HAT box key, so corpus entries stay meaningful.
var fuzzBoxKey = sha256.Sum256([]byte("racklet fuzz box key"))

// FuzzUnwrap opens arbitrary envelopes with a fixed HAT key: EnvelopePolicy
// and Unwrap never panic, and an envelope opens only if it is one Wrap made
// for this key (the secret and policy the seeds were wrapped with): no
// altered or forged envelope opens.
func FuzzUnwrap(f *testing.F) {
	priv, err := ecdh.X25519().NewPrivateKey(fuzzBoxKey[:])
	if err != nil {
		f.Fatal(err)
	}
	box := [32]byte(priv.PublicKey().Bytes())
	policy := Registers{Mask: BootMask}
	policy.Values[0][0] = 7
	secret := []byte("disk-key")
	env, err := Wrap(rand.Reader, box, policy, secret)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(env)
	f.Add(env[:wrapOverhead])
	f.Add(append([]byte{2}, env[1:]...))
	f.Add([]byte{WrapVersion})
	wantPolicy := PolicyDigest(policy)
	f.Fuzz(func(t *testing.T, e []byte) {
		mask, pd, perr := EnvelopePolicy(e)
		got, err := Unwrap(priv, e)
		if err != nil {
			return
		}
		if perr != nil {
			t.Fatalf("Unwrap opened an envelope EnvelopePolicy refuses: %v", perr)
		}
		if !bytes.Equal(got, secret) || mask != policy.Mask || pd != wantPolicy {
			t.Fatalf("a forged envelope opened: secret %q, mask %#x, policy %x", got, mask, pd)
		}
	})
}
