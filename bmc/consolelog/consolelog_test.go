package consolelog

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestAppendRotateReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{MaxBytes: 64, MaxBoots: 2})
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := s.Subscribe("pi-01")
	defer cancel()
	var off uint64
	for i := range 12 { // 12 lines of 8 bytes into a 64-byte bound: rotations
		line := fmt.Sprintf("line %02d\n", i+1)
		off += uint64(len(line))
		if err := s.Append("pi-01", 5, []byte(line), off); err != nil {
			t.Fatal(err)
		}
	}
	if c := <-ch; c.Boot != 5 || string(c.Data) != "line 01\n" {
		t.Errorf("first followed chunk %+v", c)
	}
	l, err := s.Read("pi-01", 0)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(l.Text), "\n"), "\n")
	if l.Lines != 12 || l.Bytes != 96 || l.FirstLine+len(lines)-1 != 12 || lines[0] != fmt.Sprintf("line %02d", l.FirstLine) {
		t.Errorf("after rotation: %+v, %d lines kept starting %q", l.Boot, len(lines), lines[0])
	}
	if int64(len(l.Text)) > 64 {
		t.Errorf("kept %d bytes, bound 64", len(l.Text))
	}
	for _, b := range []uint64{6, 7} {
		if err := s.Append("pi-01", b, []byte("boot\n"), 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Append("pi-01", 4, []byte("late\n"), 5); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, Options{MaxBytes: 64, MaxBoots: 2})
	boots, _ := s2.Boots("pi-01")
	if len(boots) != 2 || boots[0].Boot != 6 || boots[1].Boot != 7 {
		t.Errorf("boots kept after reopen: %+v, want 6 and 7", boots)
	}
	if b, o, _ := s2.Position("pi-01"); b != 7 || o != 5 {
		t.Errorf("position after reopen = %d/%d, want 7/5", b, o)
	}
	if _, err := s2.Read("pi-01", 5); !errors.Is(err, ErrNoBoot) {
		t.Errorf("dropped boot: %v, want ErrNoBoot", err)
	}
	if _, err := s2.Read("../etc", 0); err == nil {
		t.Error("a path as node name was accepted")
	}
}
