package resolve

import (
	"context"
	"testing"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/google/go-cmp/cmp"
	"github.com/racklet/racklet-boot/rack"
)

func TestOpenUnknownPolicies(t *testing.T) {
	cfg, base := testRack(t)
	anon, unknownMAC := addr("10.0.0.250"), addr("10.0.0.199")
	tests := map[string]struct {
		policy  rack.UnknownPolicy
		noDflt  bool
		req     Request
		want    result
		wantMAC string
	}{
		"ignore":                 {policy: rack.UnknownIgnore, req: Request{Client: unknownMAC, Name: "start4.elf"}, want: result{Err: "refused"}},
		"discover":               {policy: rack.UnknownDiscover, req: Request{Client: unknownMAC, Name: "start4.elf"}, want: result{Err: "refused"}},
		"unset":                  {policy: "", req: Request{Client: unknownMAC, Name: "start4.elf"}, want: result{Err: "refused"}},
		"default without source": {policy: rack.UnknownDefault, noDflt: true, req: Request{Client: unknownMAC, Name: "start4.elf"}, want: result{Err: "refused"}},
		"default":                {policy: rack.UnknownDefault, req: Request{Client: unknownMAC, Name: "start4.elf"}, want: result{Content: "default-start4", Path: "start4.elf"}, wantMAC: "02:00:00:00:00:99"},
		"default, serial prefix": {policy: rack.UnknownDefault, req: Request{Client: anon, Name: "12345678/config.txt"}, want: result{Content: "default-config", Path: "config.txt"}},
		"default, MAC prefix":    {policy: rack.UnknownDefault, req: Request{Client: anon, Name: "02-00-00-00-00-98/config.txt"}, want: result{Content: "default-config", Path: "config.txt"}, wantMAC: "02:00:00:00:00:98"},
		"default, missing":       {policy: rack.UnknownDefault, req: Request{Client: anon, Name: "start.elf"}, want: result{Err: "not-found"}},
		"default, eeprom":        {policy: rack.UnknownDefault, req: Request{Client: anon, Name: "pieeprom.sig"}, want: result{Err: "not-found"}},
		"default, known node":    {policy: rack.UnknownDefault, req: Request{Client: addr("10.0.0.101"), Name: "start4.elf"}, want: result{Content: "start4", Node: "pi-01", Path: "start4.elf"}, wantMAC: "dc:a6:32:01:36:c2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := *cfg
			c.UnknownMachines = tc.policy
			if !tc.noDflt {
				c.Default = &rack.Boot{Dir: "default"}
			}
			r := New(inventory.New(&c), Options{BaseDir: base, Clients: testClients})
			if diff := cmp.Diff(tc.want, resolveResult(t, r, tc.req)); diff != "" {
				t.Errorf("Open (-want +got):\n%s", diff)
			}
			n, err := r.NodeFor(context.Background(), tc.req)
			if tc.want.Err == "refused" {
				if errKind(err) != "refused" {
					t.Errorf("NodeFor: %v, want refused", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NodeFor: %v", err)
			}
			if n.Name != tc.want.Node || n.MAC.String() != tc.wantMAC {
				t.Errorf("NodeFor = %q %q, want %q %q", n.Name, n.MAC, tc.want.Node, tc.wantMAC)
			}
		})
	}
}
