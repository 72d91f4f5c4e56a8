package pisim

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The seed corpora live in testdata/fuzz/FuzzXxx/; every entry there is a
// regression case run by a plain go test.

func FuzzParseDHCP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseDHCP(b)
		if err != nil {
			return
		}
		// What parses must re-encode to something that parses the same.
		again, err := m.marshal()
		if err != nil {
			return // a reply with an option over 255 bytes cannot come off the wire
		}
		m2, err := parseDHCP(again)
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Fatalf("round trip differs (-first +second):\n%s", diff)
		}
	})
}

func FuzzCheckMenu(f *testing.F) {
	f.Fuzz(func(t *testing.T, opt43 []byte, menu string) {
		err := checkMenu(opt43, true, menu)
		if err == nil {
			if menu == "" {
				menu = DefaultMenu
			}
			if !bytes.Contains(opt43, []byte(menu)) {
				t.Fatalf("accepted option 43 %x without %q in it", opt43, menu)
			}
		}
	})
}

func FuzzParseTFTP(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseTFTP(b)
		if err != nil {
			return
		}
		switch p.Op {
		case opACK:
			if !bytes.Equal(ackPacket(p.Block), b) {
				t.Fatalf("ack %d re-encodes differently", p.Block)
			}
		case opDATA:
			if len(p.Data) != len(b)-4 {
				t.Fatalf("data block of %d bytes from a %d-byte packet", len(p.Data), len(b))
			}
		}
	})
}

func FuzzParseConfigTxt(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte, model uint8) {
		m := 4 + int(model%2)
		c := parseConfigTxt(b, m)
		for _, o := range c.Overlays {
			if o == "" {
				t.Fatal("empty overlay name")
			}
		}
		// Expanding includes that are all missing changes nothing parsed.
		c2 := parseConfigTxt(expandIncludes(b, nil), m)
		if diff := cmp.Diff(c, c2); diff != "" {
			t.Fatalf("expandIncludes without files changed the config (-before +after):\n%s", diff)
		}
	})
}

func FuzzUDPPayload(f *testing.F) {
	f.Fuzz(func(t *testing.T, pkt []byte) {
		p, ok := udpPayload(pkt, 68)
		if ok && len(p) > len(pkt)-28 {
			t.Fatalf("payload of %d bytes from a %d-byte packet", len(p), len(pkt))
		}
	})
}

// FuzzParseBootSig: no boot.sig crashes the parser; what it accepts has a
// 32-byte digest and either no signature or a 256-byte one, and a checked
// signature never verifies without a key.
func FuzzParseBootSig(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseBootSig(b)
		if err != nil {
			return
		}
		if s.sig != nil && len(s.sig) != 256 {
			t.Fatalf("accepted a %d-byte signature", len(s.sig))
		}
		if s.check(s.sum[:], nil) == nil {
			t.Fatal("check passed without a key")
		}
	})
}
