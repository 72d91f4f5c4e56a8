package pisim

import (
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// designPi is the Pi 4 of the docs/design.md capture: board 0x00a03111, serial
// 5b154510, MAC ending 32:2e:f8:ed.
func designPi() *Pi {
	return &Pi{Model: 4, Serial: 0x5b154510, MAC: net.HardwareAddr{0xdc, 0xa6, 0x32, 0x2e, 0xf8, 0xed}}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDiscoverBytes(t *testing.T) {
	b, err := designPi().discover(0x01020304, 0)
	if err != nil {
		t.Fatal(err)
	}
	// 322 bytes of DHCP: a 364-byte Ethernet frame, as in Pi 5 captures.
	if len(b) != 322 {
		t.Errorf("discover is %d bytes, want 322", len(b))
	}
	hdr := unhex(t, "01 01 06 00 | 01 02 03 04 | 00 00 | 00 00")
	if diff := cmp.Diff(hdr, b[:12]); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(unhex(t, "dca6322ef8ed"), b[28:34]); diff != "" {
		t.Errorf("chaddr (-want +got):\n%s", diff)
	}
	// Options 53, 55, 60, 93, 94, 97 in that order, values per docs/design.md.
	want := unhex(t, `63825363
		35 01 01
		37 0e 01 03 2b 3c 42 43 80 81 82 83 84 85 86 87
		3c 20`+hex.EncodeToString([]byte("PXEClient:Arch:00000:UNDI:002001"))+`
		5d 02 00 00
		5e 03 01 02 01
		61 11 00 52 50 69 34 | 11 31 a0 00 | 32 2e f8 ed | 10 45 15 5b
		ff`)
	if diff := cmp.Diff(want, b[236:236+len(want)]); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	for i, c := range b[236+len(want):] {
		if c != 0 {
			t.Fatalf("padding byte %d is %#x, want 0", i, c)
		}
	}
}

func TestRequestHasNoOption60(t *testing.T) {
	b, err := designPi().request(7, 3, net.IPv4(10, 0, 0, 50), net.IPv4(10, 0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseDHCP(b)
	if err != nil {
		t.Fatal(err)
	}
	var codes []byte
	for _, o := range m.Opts {
		codes = append(codes, o.Code)
	}
	if diff := cmp.Diff([]byte{53, 55, 50, 54, 93, 94, 97}, codes); diff != "" {
		t.Errorf("request options (-want +got):\n%s", diff)
	}
	if got := m.optIP(optRequestedIP).String(); got != "10.0.0.50" {
		t.Errorf("option 50 = %s", got)
	}
	if got := m.optIP(optServerID).String(); got != "10.0.0.1" {
		t.Errorf("option 54 = %s", got)
	}
	if m.Secs != 3 || m.Xid != 7 || m.Flags != 0 {
		t.Errorf("secs %d xid %d flags %#x", m.Secs, m.Xid, m.Flags)
	}
}

func TestOption97(t *testing.T) {
	mac := designPi().MAC
	tests := map[string]struct {
		fourcc  string
		rev     uint32
		serial  uint32
		want    string
		wantErr bool
	}{
		"design capture RPi4": {FourCCPi4, 0x00a03111, 0x5b154510, "00 52506934 1131a000 322ef8ed 1045155b", false},
		"newer firmware 4iPR": {FourCCPi4New, 0x00a03111, 0x5b154510, "00 34695052 1131a000 322ef8ed 1045155b", false},
		"pi 5":                {FourCCPi5, BoardRevPi5, 1, "00 52506935 7041d000 322ef8ed 01000000", false},
		"pi 5 reversed":       {FourCCPi5New, BoardRevPi5, 1, "00 35695052 7041d000 322ef8ed 01000000", false},
		"custom":              {"RKLT", 0x00a03111, 0x5b154510, "00 524b4c54 1131a000 322ef8ed 1045155b", false},
		"old format":          {FourCCOld, 0x00a03111, 0x5b154510, "00 1045155b 1045155b 1045155b 1045155b", false},
		"fourcc too long":     {"RPi44", 0, 0, "", true},
		"fourcc empty":        {"", 0, 0, "", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := option97(tc.fourcc, tc.rev, mac, tc.serial)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if diff := cmp.Diff(unhex(t, tc.want), got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckMenu(t *testing.T) {
	dnsmasq := unhex(t, "06 01 03 0a 04 00 50 58 45 09 14 00 00 11"+hex.EncodeToString([]byte("Raspberry Pi Boot"))+"ff")
	tests := map[string]struct {
		opt43   []byte
		present bool
		menu    string
		want    error // nil, a sentinel, or errAny
	}{
		"dnsmasq encoding":         {dnsmasq, true, "", nil},
		"explicit default menu":    {dnsmasq, true, "Raspberry Pi Boot", nil},
		"substring match":          {dnsmasq, true, "Pi Boot", nil},
		"trailing spaces":          {[]byte("\x09\x17\x00\x00\x14Raspberry Pi Boot   \xff"), true, "", nil},
		"custom PXE_OPTION43":      {[]byte("\x09\x0a\x00\x00\x07Racklet\xff"), true, "Racklet", nil},
		"no option 43":             {nil, false, "", ErrNoVendorOptions},
		"empty option 43":          {nil, true, "", ErrNoMenu},
		"no menu sub-option":       {unhex(t, "06 01 03 ff"), true, "", ErrNoMenu},
		"wrong menu text":          {[]byte("\x09\x0d\x00\x00\x0aLinux Boot\xff"), true, "", ErrMenuMismatch},
		"custom menu not matching": {dnsmasq, true, "Racklet", ErrMenuMismatch},
		"truncated sub-option":     {[]byte("\x09\x20\x00\x00"), true, "", errAny},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := checkMenu(tc.opt43, tc.present, tc.menu)
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want == errAny && err == nil, tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestParseDHCP(t *testing.T) {
	valid, err := designPi().discover(9, 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		in      []byte
		wantErr bool
	}{
		"discover":       {valid, false},
		"short":          {valid[:100], true},
		"bad cookie":     {append(append(append([]byte{}, valid[:236]...), 1, 2, 3, 4), 255), true},
		"truncated opt":  {append(append([]byte{}, valid[:240]...), 53, 5, 1), true},
		"no end option":  {append(append([]byte{}, valid[:240]...), 53, 1, 1), true},
		"hlen too large": {append([]byte{2, 1, 17}, valid[3:]...), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := parseDHCP(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				if !errors.Is(err, errBadDHCP) {
					t.Errorf("error %v does not wrap errBadDHCP", err)
				}
				return
			}
			again, err := m.marshal()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.in, again); diff != "" {
				t.Errorf("re-encoding differs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBroadcastFlag(t *testing.T) {
	for _, bcast := range []bool{false, true} {
		p := designPi()
		p.BroadcastFlag = bcast
		for name, build := range map[string]func() ([]byte, error){
			"discover": func() ([]byte, error) { return p.discover(1, 0) },
			"request":  func() ([]byte, error) { return p.request(1, 0, net.IPv4(10, 0, 0, 2), net.IPv4(10, 0, 0, 1)) },
		} {
			b, err := build()
			if err != nil {
				t.Fatal(err)
			}
			want := []byte{0, 0}
			if bcast {
				want = []byte{0x80, 0}
			}
			if diff := cmp.Diff(want, b[10:12]); diff != "" {
				t.Errorf("%s with BroadcastFlag %v: flags (-want +got):\n%s", name, bcast, diff)
			}
		}
	}
}
