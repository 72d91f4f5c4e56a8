package hatlink

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type message interface {
	Append([]byte) []byte
	Decode([]byte) error
}

func TestMessagesRoundTrip(t *testing.T) {
	var regs Registers
	regs.Mask = 0b1000_0101
	regs.Values[0][0], regs.Values[2][31], regs.Values[7][5] = 1, 2, 3
	tests := map[string]struct{ in, out message }{
		"hello":      {&HelloRequest{Min: 1, Max: 3}, &HelloRequest{}},
		"hello resp": {&HelloResponse{Version: 1, Firmware: 0x010203}, &HelloResponse{}},
		"identity":   {&IdentityResponse{SignKey: [32]byte{1}, BoxKey: [32]byte{2}, Firmware: 7, Registers: 8, Serial: "5b154510"}, &IdentityResponse{}},
		"extend":     {&ExtendRequest{Register: 3, Digest: [32]byte{9}}, &ExtendRequest{}},
		"digest":     {&DigestResponse{Value: [32]byte{4}}, &DigestResponse{}},
		"mask":       {&MaskRequest{Mask: 0x0F}, &MaskRequest{}},
		"registers":  {&regs, &Registers{}},
		"quote":      {&QuoteRequest{Nonce: [32]byte{5}, Mask: 0x0F}, &QuoteRequest{}},
		"quote resp": {&QuoteResponse{Statement: []byte("stmt"), Signature: [64]byte{6}}, &QuoteResponse{}},
		"seal":       {&SealRequest{Mask: 1, Policy: [32]byte{7}, Secret: []byte("s")}, &SealRequest{}},
		"handle":     {&HandleMessage{Handle: 513}, &HandleMessage{}},
		"blob":       {&BlobMessage{Data: []byte("data")}, &BlobMessage{}},
		"slot":       {&SlotRequest{Slot: 1}, &SlotRequest{}},
		"boot state": {&BootState{Committed: 1, Next: 0, Limit: 3, Attempts: [2]byte{3, 0}, Allowed: true, Counter: 1 << 40}, &BootState{}},
		"counter":    {&CounterMessage{Counter: 99}, &CounterMessage{}},
		"error":      {&DeviceError{Code: CodePolicy, Command: CmdUnseal, Message: "no"}, &DeviceError{}},
		"power":      {&PowerStatus{On: true, Counter: 7}, &PowerStatus{}},
		"power set":  {&PowerRequest{On: true}, &PowerRequest{}},
		"console rq": {&ConsoleRequest{Boot: 3, Offset: 1 << 33, Max: 480}, &ConsoleRequest{}},
		"console":    {&ConsoleChunk{Boot: 3, Start: 9, Data: []byte("login:")}, &ConsoleChunk{}},
	}
	for name, tc := range tests {
		enc := tc.in.Append(nil)
		if err := tc.out.Decode(enc); err != nil {
			t.Errorf("%s: decode: %v", name, err)
			continue
		}
		if diff := cmp.Diff(tc.in, tc.out); diff != "" {
			t.Errorf("%s: round trip (-in +out):\n%s", name, diff)
		}
		if len(enc) > 0 {
			if err := tc.out.Decode(enc[:len(enc)-1]); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: truncated payload decoded: err = %v", name, err)
			}
		}
		if err := tc.out.Decode(append(enc, 0)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: payload with a trailing byte decoded: err = %v", name, err)
		}
	}
}

func TestStatementRoundTrip(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	st := Statement{Nonce: [32]byte{1}, Registers: Registers{Mask: BootMask}, BootCounter: 42, Firmware: 0x10000, BoxKey: [32]byte{3}, Serial: "abc"}
	body := st.Append(nil)
	got, err := VerifyQuote(pub, body, ed25519.Sign(priv, body))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got); diff != "" {
		t.Errorf("statement round trip (-want +got):\n%s", diff)
	}
	body[len(QuoteContext)] ^= 1
	if _, err := VerifyQuote(pub, body, ed25519.Sign(priv, st.Append(nil))); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered statement: err = %v, want ErrBadSignature", err)
	}
	if _, err := ParseStatement([]byte("RACKLET-HAT-QUOTE-V2\x00")); !errors.Is(err, ErrBadStatement) {
		t.Errorf("wrong context: err = %v, want ErrBadStatement", err)
	}
}

// FuzzMessages decodes arbitrary payloads as every message type: no panics,
// and whatever decodes re-encodes to the same bytes (one encoding per value).
func FuzzMessages(f *testing.F) {
	f.Add([]byte{0x0F, 1, 2})
	f.Add(Statement{Registers: Registers{Mask: 0xFF}, Serial: "x"}.Append(nil))
	f.Add(DeviceError{Code: 5, Message: "m"}.Append(nil))
	f.Add(BootState{Limit: 3}.Append(nil))
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, m := range []message{&HelloRequest{}, &HelloResponse{}, &IdentityResponse{}, &ExtendRequest{},
			&DigestResponse{}, &MaskRequest{}, &Registers{}, &QuoteRequest{}, &QuoteResponse{}, &SealRequest{},
			&HandleMessage{}, &BlobMessage{}, &SlotRequest{}, &BootState{}, &CounterMessage{}, &DeviceError{},
			&PowerStatus{}, &PowerRequest{}, &ConsoleRequest{}, &ConsoleChunk{}} {
			if m.Decode(p) != nil {
				continue
			}
			if enc := m.Append(nil); !bytes.Equal(enc, p) {
				if _, isBoot := m.(*BootState); isBoot && len(p) > 5 && p[5] > 1 {
					continue // any non-zero byte means "allowed"
				}
				t.Fatalf("%T: decoded %x re-encodes to %x", m, p, enc)
			}
		}
		if st, err := ParseStatement(p); err == nil && !bytes.Equal(st.Append(nil), p) {
			t.Fatalf("statement %x re-encodes differently", p)
		}
	})
}
