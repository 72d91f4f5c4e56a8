package rollout

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/racklet/racklet-boot/ab"
	"github.com/racklet/racklet-boot/store"
)

func TestWriteStatus(t *testing.T) {
	f := newFleet(t, 4, store.NewMemory())
	f.bad = func(n string, img ab.Image) bool { return n == "pi-001" && img.Same(v2) }
	p := policy10
	p.MaxUnavailable = 2
	f.apply(v1, p)
	f.apply(v2, p)
	f.run(100, PhaseHalted)
	st := f.c.Status()
	var table bytes.Buffer
	if err := Write(&table, "table", st); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"GROUP workers", "halted", "1/4 at reg/os:v2", "1 failed",
		"NODE", "pi-000  b     sha256:222222222222  committed",
		"pi-001  a     sha256:111111111111  rolled-back!  2/2       attempt 2 of 2: health check failed",
		"pi-002  a     sha256:111111111111  committed",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	for format, unmarshal := range map[string]func([]byte, any) error{"json": json.Unmarshal, "yaml": yaml.Unmarshal} {
		var out bytes.Buffer
		if err := Write(&out, format, st); err != nil {
			t.Fatal(err)
		}
		var back []GroupStatus
		if err := unmarshal(out.Bytes(), &back); err != nil {
			t.Fatalf("%s: %v\n%s", format, err, out.String())
		}
		if d := cmp.Diff(st, back); d != "" {
			t.Errorf("%s round trip (-status +decoded):\n%s", format, d)
		}
	}
	if err := Write(&table, "xml", st); err == nil {
		t.Error("xml accepted")
	}
}
