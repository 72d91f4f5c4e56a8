package pisim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestTFTPRead(t *testing.T) {
	small := randBytes(1, 5000)
	exact := randBytes(2, 3*1468)
	// blksize 8 and 65540+ blocks: the block number must roll over to 0.
	big := randBytes(3, 8*65540+5)
	tests := map[string]struct {
		file       string
		data       []byte
		opts       readOpts
		setup      func(*fakeServer)
		wantErr    error
		anyRetries bool // retries depend on machine load; do not compare them
		wantStats  readStats
		wantEvents []string
	}{
		"oack blksize 1468": {
			file: "a", data: small, opts: readOpts{Blksize: 1468},
			wantStats:  readStats{Bytes: 5000, Tsize: 5000, Blksize: 1468},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1468", "DONE a"},
		},
		"oack blksize 1024 old firmware": {
			file: "a", data: small, opts: readOpts{Blksize: 1024},
			wantStats:  readStats{Bytes: 5000, Tsize: 5000, Blksize: 1024},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1024", "DONE a"},
		},
		"server caps blksize": {
			file: "a", data: small, opts: readOpts{Blksize: 1468}, setup: func(s *fakeServer) { s.blkCap = 700 },
			wantStats:  readStats{Bytes: 5000, Tsize: 5000, Blksize: 700},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1468", "DONE a"},
		},
		"exact multiple ends with empty block": {
			file: "a", data: exact, opts: readOpts{Blksize: 1468},
			wantStats:  readStats{Bytes: int64(len(exact)), Tsize: int64(len(exact)), Blksize: 1468},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1468", "DONE a"},
		},
		"options ignored": {
			file: "a", data: small, opts: readOpts{Blksize: 1468}, setup: func(s *fakeServer) { s.noOpts = true },
			wantStats:  readStats{Bytes: 5000, Tsize: -1, Blksize: 512},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1468", "DONE a"},
		},
		"probe after oack": {
			file: "a", data: small, opts: readOpts{Blksize: 1468, Probe: true},
			wantStats:  readStats{Tsize: 5000, Blksize: 1468, Probed: true},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1468", "ERR a 0 Early terminate"},
		},
		"probe after data 1 when options ignored": {
			file: "a", data: small, opts: readOpts{Blksize: 1468, Probe: true}, setup: func(s *fakeServer) { s.noOpts = true },
			wantStats:  readStats{Bytes: 512, Tsize: -1, Blksize: 512, Probed: true},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1468", "ERR a 0 Early terminate"},
		},
		"not found": {
			file: "missing", opts: readOpts{Blksize: 1468}, wantErr: ErrNotFound,
			wantStats:  readStats{Tsize: -1, Blksize: 512},
			wantEvents: []string{"RRQ missing octet tsize 0 blksize 1468"},
		},
		"lost ack 0 is repeated": {
			file: "a", data: small, opts: readOpts{Blksize: 1468}, setup: func(s *fakeServer) { s.dropAck0 = 2; s.rto = 50 * time.Millisecond },
			wantStats:  readStats{Bytes: 5000, Tsize: 5000, Blksize: 1468},
			wantEvents: []string{"RRQ a octet tsize 0 blksize 1468", "DONE a"},
		},
		"block number rollover": {
			file: "big", data: big, opts: readOpts{Blksize: 8}, anyRetries: true,
			wantStats:  readStats{Bytes: int64(len(big)), Tsize: int64(len(big)), Blksize: 8},
			wantEvents: []string{"RRQ big octet tsize 0 blksize 8", "DONE big"},
		},
		"whole-file timeout": {
			file: "slow", data: small, opts: readOpts{Blksize: 1468, Timeout: 600 * time.Millisecond},
			setup:      func(s *fakeServer) { s.stall = "slow" },
			wantErr:    ErrFileTimeout,
			wantStats:  readStats{Tsize: 5000, Blksize: 1468, Retries: 2},
			wantEvents: []string{"RRQ slow octet tsize 0 blksize 1468"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newFakeServer(t, map[string][]byte{tc.file: tc.data})
			if tc.data == nil {
				s.files = map[string][]byte{}
			}
			if tc.setup != nil {
				tc.setup(s)
			}
			s.start()
			conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			o := tc.opts
			o.Timeout = orDur(o.Timeout, 20*time.Second)
			o.Retry = orDur(o.Retry, 250*time.Millisecond)
			var got bytes.Buffer
			st, err := tftpRead(context.Background(), conn, s.tftp.LocalAddr().(*net.UDPAddr), tc.file, o, &got)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.anyRetries {
				t.Logf("%d retries", st.Retries)
				st.Retries = 0
			}
			if diff := cmp.Diff(tc.wantStats, st); diff != "" {
				t.Errorf("stats (-want +got):\n%s", diff)
			}
			if err == nil && !st.Probed && sha256.Sum256(got.Bytes()) != sha256.Sum256(tc.data) {
				t.Errorf("content differs: got %d bytes, want %d", got.Len(), len(tc.data))
			}
			// Give the server a moment to log the end of the transfer.
			want := tc.wantEvents
			var ev []string
			for i := 0; i < 100; i++ {
				if ev = s.eventList(); len(ev) >= len(want) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if diff := cmp.Diff(want, ev); diff != "" {
				t.Errorf("server saw (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTFTP(t *testing.T) {
	tests := map[string]struct {
		in      []byte
		want    *tftpPkt
		wantErr bool
	}{
		"rrq": {rrqPacket("a/b", "tsize", "0", "blksize", "1468"),
			&tftpPkt{Op: opRRQ, File: "a/b", Mode: "octet", Opts: map[string]string{"tsize": "0", "blksize": "1468"}}, false},
		"oack mixed case": {[]byte("\x00\x06BLKSIZE\x001024\x00TSize\x0042\x00"),
			&tftpPkt{Op: opOACK, Opts: map[string]string{"blksize": "1024", "tsize": "42"}}, false},
		"data":               {[]byte("\x00\x03\xff\xffxyz"), &tftpPkt{Op: opDATA, Block: 65535, Data: []byte("xyz")}, false},
		"empty data":         {[]byte("\x00\x03\x00\x07"), &tftpPkt{Op: opDATA, Block: 7, Data: []byte{}}, false},
		"ack":                {ackPacket(0), &tftpPkt{Op: opACK}, false},
		"error":              {errorPacket(0, earlyTerminate), &tftpPkt{Op: opERROR, Msg: earlyTerminate}, false},
		"error without nul":  {[]byte("\x00\x05\x00\x01File not found"), &tftpPkt{Op: opERROR, Code: 1, Msg: "File not found"}, false},
		"one byte":           {[]byte{0}, nil, true},
		"unknown opcode":     {[]byte{0, 9, 0, 0}, nil, true},
		"ack too short":      {[]byte{0, 4, 0}, nil, true},
		"ack trailing bytes": {[]byte{0, 4, 0, 1, 2}, nil, true},
		"oack odd options":   {[]byte("\x00\x06tsize\x00"), nil, true},
		"rrq unterminated":   {[]byte("\x00\x01file\x00octet"), nil, true},
		"rrq without mode":   {[]byte("\x00\x01file\x00"), nil, true},
		"error without code": {[]byte{0, 5, 0}, nil, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := parseTFTP(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyOACK(t *testing.T) {
	tests := map[string]struct {
		opts    map[string]string
		wantErr bool
	}{
		"granted":          {map[string]string{"blksize": "1468", "tsize": "10"}, false},
		"smaller blksize":  {map[string]string{"blksize": "512"}, false},
		"larger blksize":   {map[string]string{"blksize": "2000"}, true},
		"tiny blksize":     {map[string]string{"blksize": "4"}, true},
		"negative tsize":   {map[string]string{"tsize": "-1"}, true},
		"unasked windowsz": {map[string]string{"windowsize": "4"}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := readStats{Blksize: 512, Tsize: -1}
			err := applyOACK(&st, tc.opts, 1468)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}
