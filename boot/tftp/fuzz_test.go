package tftp

import (
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzParseRequest checks that any datagram either parses into a request
// that obeys the package's limits and survives a round trip, or fails with
// a *requestError; and that negotiation stays within the RFC ranges.
func FuzzParseRequest(f *testing.F) {
	f.Add(rrq(opRRQ, "start4.elf", "octet", "tsize", "0", "blksize", "1468"))
	f.Add(rrq(opRRQ, "grub.cfg-01-52-54-00-12-34-56", "octet", "blksize", "1468", "windowsize", "4"))
	f.Add(rrq(opWRQ, "f", "netascii"))
	f.Add(rrq(opRRQ, "f", "mail"))
	f.Add(rrq(opRRQ, "f", "octet", "blksize", "7", "blksize", "99999"))
	f.Add([]byte{0, 1, 0, 0})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRequest(b)
		if err != nil {
			if _, ok := err.(*requestError); !ok {
				t.Fatalf("error %v is a %T, want *requestError", err, err)
			}
			return
		}
		if r.Op != opRRQ && r.Op != opWRQ {
			t.Fatalf("parsed opcode %d", r.Op)
		}
		if r.Name == "" || len(r.Name) > maxNameLen {
			t.Fatalf("accepted name of %d bytes", len(r.Name))
		}
		if r.Mode != "octet" && r.Mode != "netascii" {
			t.Fatalf("accepted mode %q", r.Mode)
		}
		seen := map[string]bool{}
		var opts []string
		for _, o := range r.Options {
			if seen[o.Name] {
				t.Fatalf("duplicate option %q accepted", o.Name)
			}
			seen[o.Name] = true
			opts = append(opts, o.Name, o.Value)
		}
		again, err := parseRequest(rrq(r.Op, r.Name, r.Mode, opts...))
		if err != nil {
			t.Fatalf("re-encoded request does not parse: %v", err)
		}
		if diff := cmp.Diff(r, again); diff != "" {
			t.Fatalf("round trip mismatch (-first +again):\n%s", diff)
		}
		for _, lim := range []limits{{MaxBlksize: 1468, MaxWindow: 64}, {MaxBlksize: 65504, MaxWindow: 65535}} {
			n := negotiate(r, lim)
			if n.Blksize < minBlksize || n.Blksize > min(maxBlksize, max(lim.MaxBlksize, defaultBlksize)) {
				t.Fatalf("blksize %d out of range for %+v", n.Blksize, lim)
			}
			if n.Windowsize < 1 || n.Windowsize > lim.MaxWindow {
				t.Fatalf("windowsize %d out of range", n.Windowsize)
			}
			if n.Timeout < 0 || n.Timeout > MaxTimeoutOption {
				t.Fatalf("timeout %d out of range", n.Timeout)
			}
			oack := appendOACK(nil, n.Ack)
			if binary.BigEndian.Uint16(oack) != opOACK {
				t.Fatalf("bad OACK")
			}
		}
	})
}
