package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// mbrDisk builds a disk image of n sectors with the given sector contents.
func mbrDisk(n int, sectors map[int64][]entryAt) []byte {
	d := make([]byte, n*SectorSize)
	for lba, es := range sectors {
		s := d[lba*SectorSize:]
		for _, e := range es {
			b := s[0x1BE+16*e.slot:]
			b[4] = e.typ
			binary.LittleEndian.PutUint32(b[8:], uint32(e.start))
			binary.LittleEndian.PutUint32(b[12:], uint32(e.size))
		}
		s[510], s[511] = 0x55, 0xAA
	}
	binary.LittleEndian.PutUint32(d[0x1B8:], 0xcafef00d)
	return d
}

type entryAt struct {
	slot        int
	typ         byte
	start, size int64
}

// abTable is image/disk's layout, scaled down: p1-p3 primary, p4 extended
// holding p5-p7, each after its EBR.
func abTable() map[int64][]entryAt {
	return map[int64][]entryAt{
		0:  {{0, 0x0c, 8, 8}, {1, 0x0c, 16, 8}, {2, 0x0c, 24, 8}, {3, 0x0f, 32, 40}},
		32: {{0, 0x83, 4, 8}, {1, 0x05, 12, 12}}, // p5 at 36; next EBR at 44
		44: {{0, 0x83, 4, 8}, {1, 0x05, 24, 12}}, // p6 at 48; next EBR at 56
		56: {{0, 0x83, 4, 8}},                    // p7 at 60
	}
}

func TestReadTable(t *testing.T) {
	d := mbrDisk(80, abTable())
	got, err := ReadTable(bytes.NewReader(d), int64(len(d)))
	if err != nil {
		t.Fatal(err)
	}
	want := Table{DiskID: 0xcafef00d, Partitions: []Partition{
		{1, 0x0c, 8, 8}, {2, 0x0c, 16, 8}, {3, 0x0c, 24, 8}, {5, 0x83, 36, 8}, {6, 0x83, 48, 8}, {7, 0x83, 60, 8}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("table (-want +got):\n%s", diff)
	}
	for name, tc := range map[string]map[int64][]entryAt{
		"partition past the end": {0: {{0, 0x0c, 8, 800}}},
		"two extended":           {0: {{0, 0x0f, 8, 8}, {1, 0x05, 16, 8}}},
		"EBR chain loops":        {0: {{0, 0x0f, 8, 40}}, 8: {{0, 0x83, 8, 2}, {1, 0x05, 4, 4}}, 12: {{0, 0x83, 1, 2}, {1, 0x05, 4, 4}}},
		"logical past extended":  {0: {{0, 0x0f, 8, 8}}, 8: {{0, 0x83, 4, 20}}},
		"EBR without signature":  {0: {{0, 0x0f, 70, 8}}}, // sector 70 is blank
	} {
		t.Run(name, func(t *testing.T) {
			d := mbrDisk(80, tc)
			if _, err := ReadTable(bytes.NewReader(d), int64(len(d))); !errors.Is(err, ErrTable) {
				t.Fatalf("ReadTable = %v, want ErrTable", err)
			}
		})
	}
	if _, err := ReadTable(bytes.NewReader(make([]byte, 4096)), 4096); !errors.Is(err, ErrTable) {
		t.Errorf("blank disk: %v", err)
	}
}

func FuzzReadTable(f *testing.F) {
	f.Add(mbrDisk(80, abTable()))
	f.Add(mbrDisk(16, map[int64][]entryAt{0: {{0, 0x0f, 1, 15}}, 1: {{0, 0x83, 1, 2}, {1, 0x05, 4, 4}}, 5: {{0, 0x83, 1, 2}, {1, 0x05, 4, 4}}}))
	f.Fuzz(func(t *testing.T, d []byte) {
		tb, err := ReadTable(bytes.NewReader(d), int64(len(d)))
		if err != nil {
			return
		}
		for _, p := range tb.Partitions {
			if p.Start <= 0 || p.Size <= 0 || (p.Start+p.Size)*SectorSize > int64(len(d)) {
				t.Fatalf("partition %+v outside the %d-byte disk", p, len(d))
			}
		}
	})
}
