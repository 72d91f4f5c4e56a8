package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/racklet/racklet-boot/pisim"
	"github.com/racklet/racklet-boot/rack"
)

// TestConfigIsValid renders the embedded lab config in both DHCP modes and
// checks that the rack config parser accepts it with every simulated Pi.
func TestConfigIsValid(t *testing.T) {
	for _, mode := range []string{"full", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			if err := writeBoot(dir, 64<<10); err != nil {
				t.Fatal(err)
			}
			pis, err := pisim.NewMixedRack(6, 7)
			if err != nil {
				t.Fatal(err)
			}
			text, _, err := renderConfig(dir, mode, pis)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := rack.Parse(text, filepath.Join(dir, "rack.yaml"))
			if err != nil {
				t.Fatalf("lab config rejected: %v\n%s", err, text)
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

func TestOptionsDefaults(t *testing.T) {
	o := Options{}
	if err := o.defaults(); err != nil || o.Nodes != 6 || o.DHCP != "full" || o.KernelSize != 8<<20 {
		t.Errorf("defaults = %+v, %v", o, err)
	}
	if err := (&Options{DHCP: "relay"}).defaults(); err == nil {
		t.Error("dhcp mode relay accepted")
	}
}
