package rack

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFieldErrorString(t *testing.T) {
	for _, tc := range []struct {
		name string
		fe   FieldError
		want string
	}{
		{"all parts", FieldError{File: "rack.yaml", Line: 12, Col: 5, Path: "nodes[1].mac", Msg: "bad"}, "rack.yaml:12:5: nodes[1].mac: bad"},
		{"no column", FieldError{File: "rack.yaml", Line: 3, Path: "", Msg: "yaml syntax: x"}, "rack.yaml:3: yaml syntax: x"},
		{"no position", FieldError{File: "rack.yaml", Msg: "the file is empty"}, "rack.yaml: the file is empty"},
		{"no file", FieldError{Line: 2, Col: 1, Path: "kind", Msg: "required"}, "2:1: kind: required"},
		{"nothing but a message", FieldError{Msg: "m"}, "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, tc.fe.String()); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	ve := &ValidationError{Errors: []FieldError{{File: "f", Line: 1, Col: 1, Path: "a", Msg: "x"}, {File: "f", Line: 2, Col: 3, Path: "b", Msg: "y"}}}
	if diff := cmp.Diff("f:1:1: a: x\nf:2:3: b: y", ve.Error()); diff != "" {
		t.Errorf("ValidationError (-want +got):\n%s", diff)
	}
	if !errors.Is(ve, ErrInvalid) {
		t.Error("ValidationError does not wrap ErrInvalid")
	}
}

// TestAnchors checks that YAML anchors and aliases work for shared boot sources.
func TestAnchors(t *testing.T) {
	file := bootDir(t)
	cfg, err := Parse([]byte(full(
		"  - name: pi-01", "    kind: rpi4", "    serial: 00000001", "    boot: &pi4 {dir: boot}",
		"  - name: pi-02", "    kind: rpi4", "    serial: 00000002", "    boot: *pi4",
	)), file)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nodes[1].Boot.Dir == "" || cfg.Nodes[1].Boot.Dir != cfg.Nodes[0].Boot.Dir {
		t.Errorf("aliased boot source = %q, want %q", cfg.Nodes[1].Boot.Dir, cfg.Nodes[0].Boot.Dir)
	}
	if cfg.Nodes[0].Serial != "00000001" {
		t.Errorf("serial %q lost its leading zeros", cfg.Nodes[0].Serial)
	}
}
