package devmapper

import (
	"encoding/binary"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// dmIoctl mirrors struct dm_ioctl of <linux/dm-ioctl.h>, to check the
// offsets this package writes by hand.
type dmIoctl struct {
	Version     [3]uint32
	DataSize    uint32
	DataStart   uint32
	TargetCount uint32
	OpenCount   int32
	Flags       uint32
	EventNr     uint32
	Padding     uint32
	Dev         uint64
	Name        [nameLen]byte
	UUID        [uuidLen]byte
	Data        [7]byte
}

type dmTargetSpec struct {
	SectorStart uint64
	Length      uint64
	Status      int32
	Next        uint32
	TargetType  [typeNameLen]byte
}

func TestLayout(t *testing.T) {
	var h dmIoctl
	var s dmTargetSpec
	got := map[string]uintptr{
		"sizeof(dm_ioctl)": unsafe.Sizeof(h), "data_size": unsafe.Offsetof(h.DataSize),
		"data_start": unsafe.Offsetof(h.DataStart), "target_count": unsafe.Offsetof(h.TargetCount),
		"flags": unsafe.Offsetof(h.Flags), "dev": unsafe.Offsetof(h.Dev), "name": unsafe.Offsetof(h.Name),
		"uuid": unsafe.Offsetof(h.UUID), "sizeof(dm_target_spec)": unsafe.Sizeof(s),
		"next": unsafe.Offsetof(s.Next), "target_type": unsafe.Offsetof(s.TargetType),
	}
	want := map[string]uintptr{
		"sizeof(dm_ioctl)": headerSize, "data_size": offDataSize, "data_start": offDataStart,
		"target_count": offTargets, "flags": offFlags, "dev": offDev, "name": offName, "uuid": offUUID,
		"sizeof(dm_target_spec)": targetSize, "next": 20, "target_type": 24,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("struct layout (-want +got):\n%s", d)
	}
	// DM_DEV_CREATE as <linux/dm-ioctl.h> defines it on x86-64 and arm64.
	if n := ioctlNumber(cmdDevCreate); n != 0xc138fd03 {
		t.Errorf("DM_DEV_CREATE = %#x, want 0xc138fd03", n)
	}
}

func TestRequest(t *testing.T) {
	specs, err := encodeTargets([]Target{{Length: 8, Type: "verity", Params: "1 7:0 7:1"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := request("racklet-root", "RACKLET-x", flagReadOnly, 1, specs, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := (*dmIoctl)(unsafe.Pointer(&b[0]))
	if h.Version != [3]uint32{4, 0, 0} || h.DataSize != uint32(len(b)) || h.DataStart != headerSize ||
		h.TargetCount != 1 || h.Flags != flagReadOnly || cString(h.Name[:]) != "racklet-root" || cString(h.UUID[:]) != "RACKLET-x" {
		t.Errorf("header = %+v", *h)
	}
	if len(specs)%8 != 0 || binary.NativeEndian.Uint32(specs[20:]) != uint32(len(specs)) {
		t.Errorf("spec of %d bytes with next %d: want 8-byte aligned, next = its size", len(specs), binary.NativeEndian.Uint32(specs[20:]))
	}
	for name, bad := range map[string]func() error{
		"empty name":  func() error { _, err := request("", "", 0, 0, nil, 0); return err },
		"slash":       func() error { _, err := request("a/b", "", 0, 0, nil, 0); return err },
		"long name":   func() error { _, err := request(string(make([]byte, nameLen)), "", 0, 0, nil, 0); return err },
		"long type":   func() error { _, err := encodeTargets([]Target{{Type: "0123456789abcdef"}}); return err },
		"NUL params":  func() error { _, err := encodeTargets([]Target{{Type: "linear", Params: "a\x00b"}}); return err },
		"empty table": func() error { _, err := Create("x", "", nil); return err },
	} {
		if bad() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestDecodeTargets(t *testing.T) {
	ts := []Target{
		{Start: 0, Length: 16, Type: "linear", Params: "7:0 0"},
		{Start: 16, Length: 8, Type: "verity", Params: "1 7:0 7:1 4096 4096 1 1 sha256 " + string(make([]byte, 0))},
	}
	// The kernel answers with next relative to the start of the data area;
	// encodeTargets writes it relative to each spec: the same for the first.
	first, _ := encodeTargets(ts[:1])
	second, _ := encodeTargets(ts[1:])
	data := append(first, second...)
	got, err := decodeTargets(data, 2)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(ts, got); d != "" {
		t.Errorf("decoded (-want +got):\n%s", d)
	}
	if _, err := decodeTargets(data[:30], 1); err == nil {
		t.Error("truncated answer decoded")
	}
}

func TestVerityTarget(t *testing.T) {
	root := "4392712b7d8e2c5d3f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e"
	for _, tc := range []struct {
		name string
		v    Verity
		want string
		err  bool
	}{
		{name: "salted, separate hash file", v: Verity{DataDev: unix.Mkdev(7, 0), HashDev: unix.Mkdev(7, 1), DataBlocks: 1024, RootHash: root, Salt: "00ff"},
			want: "0 8192 verity 1 7:0 7:1 4096 4096 1024 1 sha256 " + root + " 00ff"},
		{name: "no salt, tree after the data", v: Verity{DataDev: unix.Mkdev(259, 3), HashDev: unix.Mkdev(259, 3), DataBlocks: 10, HashOffset: 40960, RootHash: root},
			want: "0 80 verity 1 259:3 259:3 4096 4096 10 11 sha256 " + root + " -"},
		{name: "short root hash", v: Verity{DataBlocks: 1, RootHash: "abcd"}, err: true},
		{name: "bad salt", v: Verity{DataBlocks: 1, RootHash: root, Salt: "xyz"}, err: true},
		{name: "no data", v: Verity{RootHash: root}, err: true},
		{name: "unaligned offset", v: Verity{DataBlocks: 1, RootHash: root, HashOffset: 512}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := tc.v.Target()
			if tc.err {
				if err == nil {
					t.Fatalf("no error for %+v", tc.v)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tg.String() != tc.want {
				t.Errorf("table = %q\nwant    %q", tg.String(), tc.want)
			}
		})
	}
}

// FuzzDecodeTargets: a kernel answer of any shape decodes or fails, never
// reads outside the buffer.
func FuzzDecodeTargets(f *testing.F) {
	one, _ := encodeTargets([]Target{{Length: 8, Type: "verity", Params: "1 7:0 7:1 4096 4096 1 1 sha256 00 -"}})
	two, _ := encodeTargets([]Target{{Length: 8, Type: "linear", Params: "7:0 0"}})
	f.Add(one, uint32(1))
	f.Add(append(one, two...), uint32(2))
	f.Add([]byte{1, 2, 3}, uint32(1))
	f.Fuzz(func(t *testing.T, data []byte, count uint32) {
		ts, err := decodeTargets(data, count%64)
		if err == nil && len(ts) != int(count%64) {
			t.Fatalf("%d targets for a count of %d", len(ts), count%64)
		}
	})
}
