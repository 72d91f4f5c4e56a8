package cli

import (
	"bytes"
	"io"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type row struct {
	Name    string    `json:"name"`
	Serial  string    `json:"serial,omitempty"`
	Seen    time.Time `json:"lastSeen"`
	Count   int       `json:"count"`
	Numeric string    `json:"numeric"`
}

func TestOutput(t *testing.T) {
	rows := []row{{Name: "pi-01", Serial: "5b154510", Seen: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Count: 2, Numeric: "0012"}}
	table := func(w io.Writer) error { _, err := io.WriteString(w, "NAME\npi-01\n"); return err }
	for name, tc := range map[string]struct {
		format, want string
	}{
		"table": {"table", "NAME\npi-01\n"},
		"json":  {"json", "[\n  {\n    \"name\": \"pi-01\",\n    \"serial\": \"5b154510\",\n    \"lastSeen\": \"2026-01-02T03:04:05Z\",\n    \"count\": 2,\n    \"numeric\": \"0012\"\n  }\n]\n"},
		"yaml":  {"yaml", "- name: pi-01\n  serial: 5b154510\n  lastSeen: \"2026-01-02T03:04:05Z\"\n  count: 2\n  numeric: \"0012\"\n"},
	} {
		t.Run(name, func(t *testing.T) {
			o := Output{Format: tc.format}
			var b bytes.Buffer
			if err := o.Write(&b, rows, table); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
	// The YAML reads back as the same data.
	var b bytes.Buffer
	if err := (&Output{Format: "yaml"}).Write(&b, rows, nil); err != nil {
		t.Fatal(err)
	}
	var back []row
	if err := yaml.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back[0].Numeric != "0012" || back[0].Count != 2 {
		t.Errorf("yaml round trip lost types: %+v", back[0])
	}
	if err := (&Output{Format: "xml"}).Check(); err == nil {
		t.Error("xml accepted as an output format")
	}
}
