package hatsim

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzReadState loads arbitrary bytes as a HAT state file: a refusal or a
// state that validates and survives a write and a read unchanged, never a
// panic, and never a device that opens from a state the loader refused.
func FuzzReadState(f *testing.F) {
	seed, err := newState(Options{Serial: "5b154510"})
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	if err := writeState(filepath.Join(dir, "seed.json"), seed, nil); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, "seed.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1,"signSeed":"","boxKey":"","limit":3}`))
	f.Add([]byte(`{"version":1,"committed":7}`))
	f.Add([]byte(`{"version":1,"sealed":[{"handle":1,"mask":255,"policy":"AA==","secret":null}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "hat.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := readState(path)
		if err != nil {
			if _, oerr := Open(path, Options{}); oerr == nil {
				t.Fatalf("Open accepted a state readState refused (%v)", err)
			}
			return
		}
		if err := st.validate(); err != nil {
			t.Fatalf("readState returned an invalid state: %v", err)
		}
		if err := writeState(path, st, nil); err != nil {
			t.Fatal(err)
		}
		again, err := readState(path)
		if err != nil {
			t.Fatalf("a state written back does not load: %v", err)
		}
		if diff := cmp.Diff(st, again, cmp.AllowUnexported(state{})); diff != "" {
			t.Fatalf("state changed on a write and read (-first +second):\n%s", diff)
		}
		if _, err := Open(path, Options{}); err != nil {
			t.Fatalf("Open refused a state readState accepted: %v", err)
		}
	})
}
