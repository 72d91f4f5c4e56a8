package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"text/template"

	"github.com/racklet/racklet-boot/rack"
)

// TestLabConfigIsValid renders the embedded lab config in both DHCP modes and
// checks that the rack config parser accepts it with every simulated Pi.
func TestLabConfigIsValid(t *testing.T) {
	for _, mode := range []string{"full", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeLabBoot(dir, 64<<10); err != nil {
				t.Fatal(err)
			}
			pis, err := rackOfPis(6, "mixed", 7)
			if err != nil {
				t.Fatal(err)
			}
			var lp []labPi
			for i, p := range pis {
				lp = append(lp, labPi{Name: fmt.Sprintf("pi-%02d", i+1), Model: p.Model, Serial: p.Name()})
			}
			var b bytes.Buffer
			if err := template.Must(template.New("lab").Parse(labConfig)).Execute(&b, map[string]any{"Dir": dir, "Mode": mode, "Pis": lp}); err != nil {
				t.Fatal(err)
			}
			cfg, err := rack.Parse(b.Bytes(), filepath.Join(dir, "rack.yaml"))
			if err != nil {
				t.Fatalf("lab config rejected: %v\n%s", err, b.String())
			}
			if got := len(cfg.Nodes); got != 6 {
				t.Fatalf("lab config has %d nodes, want 6", got)
			}
			for i, n := range cfg.Nodes {
				if n.Serial != pis[i].Name() || string(n.Kind) != fmt.Sprintf("rpi%d", pis[i].Model) {
					t.Errorf("node %d = %s/%s, want serial %s kind rpi%d", i, n.Serial, n.Kind, pis[i].Name(), pis[i].Model)
				}
				if _, err := os.Stat(filepath.Join(n.Boot.Dir, "config.txt")); err != nil {
					t.Errorf("node %s: boot tree lacks config.txt: %v", n.Name, err)
				}
			}
		})
	}
}

func TestRackOfPis(t *testing.T) {
	for _, tc := range []struct {
		kind    string
		n       int
		models  []int
		wantErr bool
	}{
		{"rpi4", 3, []int{4, 4, 4}, false},
		{"rpi5", 2, []int{5, 5}, false},
		{"mixed", 5, []int{4, 5, 4, 5, 4}, false},
		{"rpi3", 1, nil, true},
		{"mixed", 0, nil, true},
	} {
		pis, err := rackOfPis(tc.n, tc.kind, 1)
		if (err != nil) != tc.wantErr {
			t.Errorf("rackOfPis(%d, %s) error = %v, want error %v", tc.n, tc.kind, err, tc.wantErr)
			continue
		}
		seen := map[uint32]bool{}
		for i, p := range pis {
			if p.Model != tc.models[i] {
				t.Errorf("%s[%d] model %d, want %d", tc.kind, i, p.Model, tc.models[i])
			}
			if seen[p.Serial] {
				t.Errorf("%s: serial %08x twice", tc.kind, p.Serial)
			}
			seen[p.Serial] = true
		}
	}
}
