package rack

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestApplyOverlay(t *testing.T) {
	file := bootDir(t)
	withDefault := append(strings.Split(strings.TrimSuffix(nodeConfig("pi-01"), "\n"), "\n"), "default: {dir: boot}")
	cfg, err := Parse([]byte(y(withDefault...)), file)
	if err != nil {
		t.Fatal(err)
	}
	noDefault, err := Parse([]byte(nodeConfig("pi-01")), file)
	if err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(filepath.Dir(file), OverlayFile)
	head := []string{"apiVersion: racklet.io/v1alpha1", "kind: ApprovedNodes", "nodes:"}
	tests := []struct {
		name     string
		cfg      *Config
		lines    []string
		names    []string // nodes after the merge
		warnings []want
		errs     []want
	}{
		{"approved node boots the default", cfg, append(head, "  - {name: pi-17, kind: rpi4, serial: 5b154517}"),
			[]string{"pi-01", "pi-17"}, nil, nil},
		{"the config wins", cfg, append(head, "  - {name: pi-01, kind: rpi4, serial: 5b154599}", "  - {name: pi-02, kind: rpi4, serial: 5B154510}"),
			[]string{"pi-01"}, []want{{4, "nodes[1]", "node pi-01"}, {5, "nodes[2]", "serial 5B154510, node pi-01"}}, nil},
		{"checked like the config", cfg, append(head, "  - {name: pi-17, kind: rpi4, serial: 5b15451}", "  - {name: pi-18, kind: rpi4, serial: 5b154518, power: standby}"),
			nil, nil, []want{{4, "nodes[1].serial", "not a Pi serial"}, {5, "nodes[2].power", "not a power state"}}},
		{"duplicates inside the overlay", cfg, append(head, "  - {name: pi-17, kind: rpi4, serial: 5b154517}", "  - {name: pi-17, kind: rpi4, serial: 5b154518}"),
			nil, nil, []want{{5, "nodes[2].name", "also used by node \"pi-17\""}}},
		{"no default to boot", noDefault, append(head, "  - {name: pi-17, kind: rpi4, serial: 5b154517}"),
			nil, nil, []want{{4, "nodes[1].boot", "needs a boot source"}}},
		{"wrong kind", cfg, []string{"apiVersion: racklet.io/v1alpha1", "kind: Rack", "nodes: []"},
			nil, nil, []want{{2, "kind", "has kind ApprovedNodes"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, warns, err := ApplyOverlay(tc.cfg, []byte(y(tc.lines...)), ov)
			if len(tc.errs) > 0 {
				compareErrors(t, err, ov, tc.errs)
			} else if err != nil {
				t.Fatal(err)
			}
			if len(warns) != len(tc.warnings) {
				t.Fatalf("warnings %v, want %d", warns, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if warns[i].Line != w.line || warns[i].Path != w.path || !strings.Contains(warns[i].Msg, w.msg) || warns[i].File != ov {
					t.Errorf("warning %d = %v, want %+v", i, warns[i], w)
				}
			}
			if err != nil {
				return
			}
			var names []string
			for _, n := range got.Nodes {
				names = append(names, n.Name)
			}
			if diff := cmp.Diff(tc.names, names); diff != "" {
				t.Errorf("nodes (-want +got):\n%s", diff)
			}
			if len(got.Nodes) > 1 {
				n := got.Nodes[1]
				if n.Source != ov || n.Power != PowerOn || n.Boot.Dir != filepath.Join(filepath.Dir(file), "boot") {
					t.Errorf("approved node %+v: want source %s, power on and the default boot dir", n, ov)
				}
			}
			if len(tc.cfg.Nodes) != 1 {
				t.Error("ApplyOverlay changed the config it was given")
			}
		})
	}
}

func TestWriteOverlayRoundTrip(t *testing.T) {
	file := bootDir(t)
	cfg, err := Parse([]byte(y(append(strings.Split(strings.TrimSuffix(nodeConfig("pi-01"), "\n"), "\n"), "default: {dir: boot}")...)), file)
	if err != nil {
		t.Fatal(err)
	}
	data, err := WriteOverlay(Overlay{Nodes: []Node{{Name: "pi-17", Kind: KindRPi4, Serial: "5b154517", MAC: mustMAC("dc:a6:32:00:00:17"), Power: PowerOff}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ApplyOverlay(cfg, data, filepath.Join(filepath.Dir(file), OverlayFile))
	if err != nil {
		t.Fatalf("overlay as written does not load: %v\n%s", err, data)
	}
	n := got.Nodes[1]
	if n.Name != "pi-17" || n.MAC.String() != "dc:a6:32:00:00:17" || n.Power != PowerOff {
		t.Errorf("round trip: %+v", n)
	}
}
