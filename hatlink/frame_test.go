package hatlink

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type got struct {
	Type, Seq byte
	Payload   string
}

func mustFrame(t testing.TB, typ, seq byte, payload string) []byte {
	t.Helper()
	f, err := AppendFrame(nil, typ, seq, []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// decodeAll feeds in chunks of size step and collects every frame.
func decodeAll(in []byte, step int) ([]got, DecoderStats) {
	var d Decoder
	var out []got
	for len(in) > 0 {
		n := min(step, len(in))
		chunk := in[:n]
		in = in[n:]
		for len(chunk) > 0 {
			k := d.Feed(chunk)
			chunk = chunk[k:]
			for {
				f, ok := d.Next()
				if !ok {
					break
				}
				out = append(out, got{f.Type, f.Seq, string(f.Payload)})
			}
		}
	}
	return out, d.Stats
}

func TestDecoderResync(t *testing.T) {
	a := mustFrame(t, 0x05, 1, "hello")
	b := mustFrame(t, 0x85, 2, string(bytes.Repeat([]byte{0xA5}, 40)))
	empty := mustFrame(t, 0x02, 3, "")
	big := mustFrame(t, 0x04, 4, string(bytes.Repeat([]byte("x"), MaxPayload)))
	badCRC := bytes.Clone(a)
	badCRC[len(badCRC)-1] ^= 0x01
	badHeader := bytes.Clone(a)
	badHeader[4] ^= 0x40
	oversize := []byte{Sync0, Sync1, 0xFF, 0xFF, 1, 1}
	oversize = append(oversize, crc8(oversize[2:6]))
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	want := []got{{0x05, 1, "hello"}, {0x85, 2, string(bytes.Repeat([]byte{0xA5}, 40))}}
	tests := []struct {
		name string
		in   []byte
		want []got
	}{
		{"two frames", cat(a, b), want},
		{"garbage before and between", cat([]byte("noise\xa5\x00\xa5"), a, []byte{0xA5, 0xA5, 0x5A}, b), want},
		{"bad crc dropped", cat(badCRC, a, b), want},
		{"bad header dropped", cat(badHeader, a, b), want},
		{"oversized length", cat(oversize, a, b), want},
		{"truncated frame then good ones", cat(a[:9], a, b), want},
		{"empty payload", empty, []got{{0x02, 3, ""}}},
		{"max payload", big, []got{{0x04, 4, string(bytes.Repeat([]byte("x"), MaxPayload))}}},
		{"only garbage", bytes.Repeat([]byte{Sync0, Sync1, 0x10}, 200), nil},
	}
	for _, tc := range tests {
		for _, step := range []int{1, 3, 64, 4096} {
			got, _ := decodeAll(tc.in, step)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (chunks of %d): frames differ (-want +got):\n%s", tc.name, step, diff)
			}
		}
	}
}

// TestDecoderTruncatedLongFrame: a cut-off frame whose header claims more
// bytes than follow stalls the decoder until enough bytes arrive to fail its
// CRC, or until the reader sees the line idle and calls Reset.
func TestDecoderTruncatedLongFrame(t *testing.T) {
	a := mustFrame(t, 0x05, 1, "hello")
	big := mustFrame(t, 0x04, 4, string(bytes.Repeat([]byte("x"), MaxPayload)))
	var d Decoder
	d.Feed(big[:300])
	if _, ok := d.Next(); ok {
		t.Fatal("decoded a truncated frame")
	}
	d.Reset()
	d.Feed(a)
	if f, ok := d.Next(); !ok || string(f.Payload) != "hello" {
		t.Fatalf("after Reset: got %v %q, want the next frame", ok, f.Payload)
	}
	// Without a reset, traffic that overruns the claimed length recovers too.
	in := big[:300]
	for range 16 {
		in = append(in, a...)
	}
	frames, _ := decodeAll(in, 7)
	if len(frames) < 12 {
		t.Errorf("recovered %d of 16 frames after a truncated long frame, want at least 12", len(frames))
	}
}

func TestDecoderStats(t *testing.T) {
	a := mustFrame(t, 1, 1, "x")
	bad := bytes.Clone(a)
	bad[len(bad)-2] ^= 0xFF
	_, st := decodeAll(append(append([]byte("zz"), bad...), a...), 5)
	if st.Frames != 1 || st.BadCRC != 1 || st.Skipped < 2 {
		t.Errorf("stats = %+v, want 1 frame, 1 bad CRC, ≥2 skipped", st)
	}
}

func TestAppendFrameTooLarge(t *testing.T) {
	if _, err := AppendFrame(nil, 1, 1, make([]byte, MaxPayload+1)); err == nil {
		t.Fatal("AppendFrame accepted a payload larger than MaxPayload")
	}
	f := mustFrame(t, 1, 1, string(make([]byte, MaxPayload)))
	if len(f) != MaxFrame {
		t.Errorf("largest frame is %d bytes, want %d", len(f), MaxFrame)
	}
}

// FuzzDecoder feeds arbitrary bytes in arbitrary chunks: the decoder must
// never panic, and every frame it returns must re-encode to bytes that
// occur in the input (it never invents a frame).
func FuzzDecoder(f *testing.F) {
	a := mustFrame(f, 0x05, 1, "hello")
	f.Add(a, uint8(1))
	f.Add(append([]byte("garbage"), a...), uint8(3))
	f.Add([]byte{Sync0, Sync1, 0xFF, 0xFF, 0, 0, 0}, uint8(7))
	f.Add(append(a[:8], a...), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		frames, _ := decodeAll(in, int(step)+1)
		for _, g := range frames {
			enc, err := AppendFrame(nil, g.Type, g.Seq, []byte(g.Payload))
			if err != nil {
				t.Fatalf("decoder returned an unencodable frame: %v", err)
			}
			if !bytes.Contains(in, enc) {
				t.Fatalf("decoder returned a frame not present in its input: %x", enc)
			}
		}
	})
}
