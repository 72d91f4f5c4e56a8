package verifier_test

import (
	"testing"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/hatlink"
)

// FuzzVerify submits arbitrary statements and signatures for an enrolled
// node: the verifier must never panic and never release anything.
func FuzzVerify(f *testing.F) {
	r := newRig(f)
	good := hatlink.Statement{Registers: hatlink.Registers{Mask: hatlink.BootMask}, Serial: "pi-01"}.Append(nil)
	f.Add(good, make([]byte, 64), "")
	f.Add(good[:30], []byte{1}, "ed25519:AAAA")
	f.Add([]byte{}, []byte{}, "x")
	f.Fuzz(func(t *testing.T, stmt, sig []byte, key string) {
		rel, err := r.v.Verify(t.Context(), attest.QuoteSubmission{Node: "pi-01", Key: key, Statement: stmt, Signature: sig})
		if err == nil || len(rel.Secrets) != 0 {
			t.Fatalf("forged quote accepted: %+v, %v", rel, err)
		}
	})
}
