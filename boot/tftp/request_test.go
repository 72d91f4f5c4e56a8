package tftp

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseRequest(t *testing.T) {
	long := strings.Repeat("a", 256)
	tests := map[string]struct {
		in       []byte
		want     request
		wantCode uint16 // ERROR code when parsing fails
		wantErr  bool
	}{
		"plain rrq": {
			in:   rrq(opRRQ, "start4.elf", "octet"),
			want: request{Op: opRRQ, Name: "start4.elf", Mode: "octet"},
		},
		"pi request, mode upper case": {
			in: rrq(opRRQ, "5b154510/config.txt", "OCTET", "tsize", "0", "blksize", "1468"),
			want: request{Op: opRRQ, Name: "5b154510/config.txt", Mode: "octet",
				Options: []option{{"tsize", "0"}, {"blksize", "1468"}}},
		},
		"option names lower-cased": {
			in:   rrq(opRRQ, "f", "netascii", "BlkSize", "1024", "WINDOWSIZE", "4"),
			want: request{Op: opRRQ, Name: "f", Mode: "netascii", Options: []option{{"blksize", "1024"}, {"windowsize", "4"}}},
		},
		"trailing NUL padding": {
			in:   append(rrq(opRRQ, "f", "octet", "tsize", "0"), 0, 0),
			want: request{Op: opRRQ, Name: "f", Mode: "octet", Options: []option{{"tsize", "0"}}},
		},
		"wrq parses": {
			in:   rrq(opWRQ, "f", "octet"),
			want: request{Op: opWRQ, Name: "f", Mode: "octet"},
		},
		"255-byte name": {
			in:   rrq(opRRQ, long[:255], "octet"),
			want: request{Op: opRRQ, Name: long[:255], Mode: "octet"},
		},
		"name too long":         {in: rrq(opRRQ, long, "octet"), wantErr: true, wantCode: errAccess},
		"mail mode":             {in: rrq(opRRQ, "f", "mail"), wantErr: true, wantCode: errIllegal},
		"NUL inside name":       {in: rrq(opRRQ, "f\x00x", "octet"), wantErr: true, wantCode: errIllegal},
		"empty name":            {in: rrq(opRRQ, "", "octet"), wantErr: true, wantCode: errIllegal},
		"no mode":               {in: []byte("\x00\x01file\x00"), wantErr: true, wantCode: errIllegal},
		"not NUL terminated":    {in: []byte("\x00\x01file\x00octet"), wantErr: true, wantCode: errIllegal},
		"option without value":  {in: rrq(opRRQ, "f", "octet", "blksize"), wantErr: true, wantCode: errIllegal},
		"duplicate option":      {in: rrq(opRRQ, "f", "octet", "blksize", "512", "BLKSIZE", "1024"), wantErr: true, wantCode: errOptionsDeny},
		"data opcode":           {in: []byte("\x00\x03\x00\x01abc"), wantErr: true, wantCode: errIllegal},
		"short":                 {in: []byte{0}, wantErr: true, wantCode: errIllegal},
		"opcode only":           {in: []byte{0, 1}, wantErr: true, wantCode: errIllegal},
		"garbage opcode 0xffff": {in: []byte{0xff, 0xff, 'x', 0}, wantErr: true, wantCode: errIllegal},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseRequest(tc.in)
			if tc.wantErr {
				var re *requestError
				if !errors.As(err, &re) || !errors.Is(err, errMalformed) {
					t.Fatalf("parseRequest error = %v, want a *requestError wrapping errMalformed", err)
				}
				if re.Code != tc.wantCode {
					t.Errorf("error code = %d (%s), want %d", re.Code, re.Msg, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseRequest: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("parseRequest mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	lim := limits{MaxBlksize: 1468, MaxWindow: 64}
	tests := map[string]struct {
		mode string
		opts []string
		lim  limits
		want negotiated
	}{
		"no options": {
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
		"pi": {
			opts: []string{"tsize", "0", "blksize", "1468"},
			want: negotiated{Blksize: 1468, Windowsize: 1, WantTsize: true,
				Ack: []option{{"tsize", ""}, {"blksize", "1468"}}},
		},
		"edk2": {
			opts: []string{"blksize", "1468", "windowsize", "4"},
			want: negotiated{Blksize: 1468, Windowsize: 4, Ack: []option{{"blksize", "1468"}, {"windowsize", "4"}}},
		},
		"blksize 7 ignored": {
			opts: []string{"blksize", "7"},
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
		"blksize 8 allowed": {
			opts: []string{"blksize", "8"},
			want: negotiated{Blksize: 8, Windowsize: 1, Ack: []option{{"blksize", "8"}}},
		},
		"blksize 99999 capped to the MTU cap": {
			opts: []string{"blksize", "99999"},
			want: negotiated{Blksize: 1468, Windowsize: 1, Ack: []option{{"blksize", "1468"}}},
		},
		"blksize 99999 capped to 65464": {
			opts: []string{"blksize", "99999"},
			lim:  limits{MaxBlksize: 65504, MaxWindow: 1},
			want: negotiated{Blksize: 65464, Windowsize: 1, Ack: []option{{"blksize", "65464"}}},
		},
		"garbage values ignored": {
			opts: []string{"blksize", "big", "tsize", "-1", "timeout", "0", "windowsize", "0x10"},
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
		"negative tsize ignored": {
			opts: []string{"tsize", "-5"},
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
		"timeout past the cap (issue 14: 255 pinned a slot for 81 min)": {
			opts: []string{"timeout", "255"},
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
		"timeout at the cap": {
			opts: []string{"timeout", "10"},
			want: negotiated{Blksize: 512, Windowsize: 1, Timeout: 10, Ack: []option{{"timeout", "10"}}},
		},
		"timeout range": {
			opts: []string{"timeout", "256"},
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
		"timeout ok": {
			opts: []string{"timeout", "3"},
			want: negotiated{Blksize: 512, Windowsize: 1, Timeout: 3, Ack: []option{{"timeout", "3"}}},
		},
		"windowsize capped": {
			opts: []string{"windowsize", "65535"},
			want: negotiated{Blksize: 512, Windowsize: 64, Ack: []option{{"windowsize", "64"}}},
		},
		"netascii stays lock-step, no tsize": {
			mode: "netascii",
			opts: []string{"windowsize", "8", "tsize", "0"},
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
		"unknown option ignored": {
			opts: []string{"multicast", "", "rollover", "0"},
			want: negotiated{Blksize: 512, Windowsize: 1},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mode := tc.mode
			if mode == "" {
				mode = "octet"
			}
			r, err := parseRequest(rrq(opRRQ, "f", mode, tc.opts...))
			if err != nil {
				t.Fatalf("parseRequest: %v", err)
			}
			l := tc.lim
			if l == (limits{}) {
				l = lim
			}
			if diff := cmp.Diff(tc.want, negotiate(r, l)); diff != "" {
				t.Errorf("negotiate mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
