package store

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// journal is what package ab asks of a store.
type journal interface {
	PutRecords(context.Context, ...Record) error
	Records(context.Context, string) ([]Record, error)
	Close() error
}

// TestRecords runs the state journal through both backends: all-or-none
// batches, Seq never moving backwards, prefix listing, and a reopen (bolt).
func TestRecords(t *testing.T) {
	ctx := context.Background()
	rec := func(key string, seq uint64, v string) Record {
		return Record{Key: key, Seq: seq, Data: json.RawMessage(`"` + v + `"`)}
	}
	for name, open := range map[string]func(t *testing.T, path string) journal{
		"memory": func(t *testing.T, _ string) journal {
			return NewMemory()
		},
		"bolt": func(t *testing.T, path string) journal {
			return openBolt(t, path, BoltOptions{})
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s := open(t, path)
			steps := []struct {
				name    string
				put     []Record
				wantErr error
			}{
				{"first batch", []Record{rec("node/pi-01", 1, "a"), rec("node/pi-02", 1, "a"), rec("rollout/workers", 1, "r")}, nil},
				{"newer and stale", []Record{rec("node/pi-01", 2, "b"), rec("node/pi-02", 1, "stale")}, nil},
				{"older is skipped", []Record{rec("node/pi-01", 1, "old")}, nil},
				{"bad batch stores nothing", []Record{rec("node/pi-03", 1, "x"), {Key: "node/pi-04", Seq: 1, Data: json.RawMessage("{")}}, ErrInvalid},
				{"empty key", []Record{{Seq: 1, Data: json.RawMessage("1")}}, ErrInvalid},
			}
			for _, st := range steps {
				if err := s.PutRecords(ctx, st.put...); !errors.Is(err, st.wantErr) {
					t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
				}
			}
			want := []Record{rec("node/pi-01", 2, "b"), rec("node/pi-02", 1, "a")}
			check := func(when string) {
				got, err := s.Records(ctx, "node/")
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(want, got); d != "" {
					t.Errorf("%s: node records (-want +got):\n%s", when, d)
				}
				all, _ := s.Records(ctx, "")
				if len(all) != 3 {
					t.Errorf("%s: %d records in all, want 3", when, len(all))
				}
			}
			check("written")
			if name == "bolt" {
				s.Close()
				s = open(t, path)
				check("reopened")
			}
			s.Close()
			if _, err := s.Records(ctx, ""); !errors.Is(err, ErrClosed) {
				t.Errorf("read after close: %v, want ErrClosed", err)
			}
		})
	}
}
