package hatlink_test

import (
	"context"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
)

// TestFrameSizes checks the largest frame of each big command stays under
// MaxFrame, with every register selected and the longest serial.
func TestFrameSizes(t *testing.T) {
	var all hatlink.Registers
	all.Mask = 0xFF
	st := hatlink.Statement{Registers: all, Serial: strings.Repeat("s", hatlink.MaxSerial)}
	quote := hatlink.QuoteResponse{Statement: st.Append(nil)}.Append([]byte{0})
	env, err := hatlink.Wrap(rand.Reader, hatsimBoxKey(t), all, make([]byte, hatlink.MaxWrappedSecret))
	if err != nil {
		t.Fatal(err)
	}
	unwrap := hatlink.BlobMessage{Data: env}.Append([]byte{0})
	id := hatlink.IdentityResponse{Serial: strings.Repeat("s", hatlink.MaxSerial)}.Append([]byte{0})
	boot := hatlink.QuoteResponse{Statement: hatlink.Statement{Registers: hatlink.Registers{Mask: hatlink.BootMask}, Serial: "5b154510"}.Append(nil)}.Append([]byte{0})
	for name, msg := range map[string][]byte{"quote(all registers)": quote, "quote(boot registers)": boot, "unwrap(largest secret)": unwrap, "identity": id} {
		f, err := hatlink.AppendFrame(nil, msg[0], 0, msg[1:])
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		t.Logf("%s frame: %d bytes (limit %d)", name, len(f), hatlink.MaxFrame)
	}
	if _, err := hatlink.Wrap(rand.Reader, hatsimBoxKey(t), all, make([]byte, hatlink.MaxWrappedSecret+1)); err == nil {
		t.Error("Wrap accepted a secret too large for one frame")
	}
}

func hatsimBoxKey(t *testing.T) [32]byte {
	return newDevice(t).Identity().BoxKey
}

// BenchmarkQuote115200 measures a quote round trip (request, signing,
// 300-byte answer) over an in-memory line paced at 11520 B/s in both
// directions, as a 115200-baud UART.
func BenchmarkQuote115200(b *testing.B) {
	benchQuote(b, 11520)
}

// BenchmarkQuoteUnpaced is the same round trip without pacing: the cost of
// framing, the simulator and signing alone.
func BenchmarkQuoteUnpaced(b *testing.B) {
	benchQuote(b, 0)
}

func benchQuote(b *testing.B, bps int) {
	dev, err := hatsim.Open(b.TempDir()+"/hat.json", hatsim.Options{Serial: "5b154510"})
	if err != nil {
		b.Fatal(err)
	}
	host, devEnd := lossyPair(1, noise{})
	var h, d io.ReadWriteCloser = host, devEnd
	if bps > 0 {
		h, d = hatlink.Pace(host, bps), hatlink.Pace(devEnd, bps)
	}
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	go hatlink.Serve(ctx, d, dev)
	l := hatlink.NewLink(h)
	defer l.Close()
	c, err := hatlink.NewClient(ctx, l)
	if err != nil {
		b.Fatal(err)
	}
	var nonce [32]byte
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Quote(ctx, nonce, hatlink.BootMask); err != nil {
			b.Fatal(err)
		}
	}
}
