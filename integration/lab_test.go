package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/pisim"
)

// TestLabBootsSimulatedRack runs the README's main job, `racklet-boot lab`,
// in both DHCP modes. In proxy mode dnsmasq is the router: every simulated Pi
// must end up with dnsmasq's address and racklet-boot's boot options (option
// 43, TFTP server, option 97 echoed), then load its kernel over TFTP.
func TestLabBootsSimulatedRack(t *testing.T) {
	need(t, "dnsmasq")
	for _, tc := range []struct {
		mode  string
		nodes int
		dhcp  string
	}{
		{"full", 8, "10.42.0.2"},
		{"proxy", 4, "10.42.0.1"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
			defer cancel()
			var out, errb bytes.Buffer
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "racklet-boot"), "lab", "--dhcp", tc.mode,
				"--nodes", strconv.Itoa(tc.nodes), "--kernel-mib", "4", "-o", "json")
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("lab --dhcp %s: %v\nstdout:\n%s\nstderr:\n%s", tc.mode, err, tail(out.String(), 4000), tail(errb.String(), 4000))
			}
			var results []*pisim.Result
			// The first line is the lab's own banner; the JSON follows.
			body := out.Bytes()
			if i := bytes.IndexByte(body, '['); i >= 0 {
				body = body[i:]
			}
			if err := json.Unmarshal(body, &results); err != nil {
				t.Fatalf("lab output is not the simulator's JSON: %v\n%s", err, tail(out.String(), 2000))
			}
			if len(results) != tc.nodes {
				t.Fatalf("%d results, want %d", len(results), tc.nodes)
			}
			serials := map[string]bool{}
			for _, r := range results {
				if serials[r.Serial] {
					t.Errorf("serial %s booted twice", r.Serial)
				}
				serials[r.Serial] = true
				if !r.KernelLoaded {
					t.Errorf("pi %s: %s %s", r.Serial, r.Verdict, r.Error)
				}
				if r.DHCPServer != tc.dhcp || r.TFTPServer != "10.42.0.2" || !r.Echoed97 || r.Proxy != (tc.mode == "proxy") {
					t.Errorf("pi %s: address %s from %s, tftp %s, proxy %v, option 97 echoed %v; want address from %s and tftp 10.42.0.2",
						r.Serial, r.Address, r.DHCPServer, r.TFTPServer, r.Proxy, r.Echoed97, tc.dhcp)
				}
			}
		})
	}
}
