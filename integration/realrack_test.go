package integration

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	bootserver "github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/internal/testutil"
)

// guideFile is the guide this test runs.
const guideFile = "../docs/real-rack.md"

// block is one ```sh block of the guide and the directive in the HTML
// comment just above it (<!-- racklet-doc: ... -->), if any.
type block struct {
	line      int      // line of the opening fence
	directive []string // e.g. ["hardware", "power-on", "2", "discover"], ["proxy"], ["settings"]
	body      string
}

var directiveRE = regexp.MustCompile(`^<!-- racklet-doc: (.+) -->$`)

// guideBlocks extracts the shell blocks of the guide, in order.
func guideBlocks(t *testing.T) []block {
	t.Helper()
	f, err := os.Open(guideFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []block
	var cur *block
	var directive []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && line == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		case line == "```sh":
			cur, directive = &block{line: n, directive: directive}, nil
		case strings.HasPrefix(line, "```"):
			t.Fatalf("%s:%d: a code block in another language (%s): the guide's commands are sh", guideFile, n, line)
		default:
			if m := directiveRE.FindStringSubmatch(line); m != nil {
				directive = strings.Fields(m[1])
			} else if strings.TrimSpace(line) != "" {
				directive = nil
			}
		}
	}
	if cur != nil {
		t.Fatalf("%s:%d: unclosed code block", guideFile, cur.line)
	}
	return blocks
}

// rackLAN is the guide's network: a switch (namespace), the server's end of
// it in this namespace (the guide's commands run here, where the Debian
// archive is reachable), the rack's namespace for simulated Pis and, in
// proxy mode, a router namespace running dnsmasq.
type rackLAN struct {
	mode     string
	iface    string
	server   netip.Addr
	router   netip.Addr
	subnet   netip.Prefix
	rack     netlab.Namespace
	settings map[string]string
}

func newGuideLAN(t *testing.T, mode string) *rackLAN {
	t.Helper()
	ctx := t.Context()
	id := netlab.Suffix(6)
	// A /24 of its own in 10.64.0.0/10: the server's end lives in the shared
	// namespace, where another test's fixed subnet must not meet it.
	sub := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(64 + rand.IntN(64)), byte(rand.IntN(256)), 0}), 24)
	host := func(n byte) netip.Addr { a := sub.Addr().As4(); a[3] = n; return netip.AddrFrom4(a) }
	l := &rackLAN{mode: mode, iface: "rkg" + id, server: host(2), subnet: sub}
	sw, err := netlab.NewSwitch(ctx, "rkg-sw-"+id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sw.Close) // the server's veth end goes with its peer
	port := "p" + netlab.Suffix(8)
	for _, args := range [][]string{
		{"link", "add", l.iface, "type", "veth", "peer", "name", port},
		{"link", "set", port, "netns", string(sw.NS)},
		{"addr", "add", netip.PrefixFrom(l.server, 24).String(), "dev", l.iface},
		{"link", "set", l.iface, "up"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, args := range [][]string{{"link", "set", port, "master", sw.Bridge}, {"link", "set", port, "up"}} {
		if err := sw.NS.Run(ctx, "ip", args...); err != nil {
			t.Fatal(err)
		}
	}
	if l.rack, err = netlab.AddNamespace(ctx, "rkg-rack-"+id); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.rack.Delete)
	if err := sw.Attach(ctx, l.rack, "eth0", netip.Prefix{}); err != nil {
		t.Fatal(err)
	}
	l.router = l.server // full mode: the server is the nodes' gateway
	if mode == "proxy" {
		l.router = host(1)
		rtr := newHost(t, "rkg-rtr")
		if err := sw.Attach(ctx, rtr, "eth0", netip.PrefixFrom(l.router, 24)); err != nil {
			t.Fatal(err)
		}
		dnsmasq := start(t, rtr, "dnsmasq", "--keep-in-foreground", "--log-dhcp", "--log-facility=-", "--conf-file=/dev/null",
			"--port=0", "--bind-interfaces", "--interface=eth0", "--no-ping", "--dhcp-leasefile="+filepath.Join(t.TempDir(), "leases"),
			fmt.Sprintf("--dhcp-range=%s,%s,255.255.255.0,1h", host(100), host(250)))
		t.Cleanup(dnsmasq.Stop)
	}
	return l
}

// standIns are what the test does for the guide's hardware blocks, as
// shell functions the script calls with the directive's arguments.
const standIns = `
racklet_doc_start_service() {
  racklet-boot serve --config "$ETC/rack.yaml" --data-dir "$STATE" --log-format json \
    --tftp-listen "$SERVER_IP:69" --http-listen "$SERVER_IP:80" >"$WORK/racklet-boot.log" 2>&1 &
  echo $! >"$WORK/racklet-boot.pid"
  for i in $(seq 100); do curl -fsS "http://$SERVER_IP/healthz" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "racklet-boot did not come up:" >&2; tail -20 "$WORK/racklet-boot.log" >&2; return 1
}
racklet_doc_stop_service() {
  if [ -f "$WORK/racklet-boot.pid" ]; then kill "$(cat "$WORK/racklet-boot.pid")" 2>/dev/null || true; wait || true; fi
}
reloads() { curl -fsS "http://$SERVER_IP/metrics" | sed -n 's/^racklet_config_reloads_total{result="ok"} //p'; }
racklet_doc_reload() {
  before=$(reloads)
  kill -HUP "$(cat "$WORK/racklet-boot.pid")"
  for i in $(seq 100); do [ "$(reloads)" -gt "$before" ] && return 0; sleep 0.2; done
  echo "racklet-boot did not reload its config" >&2; return 1
}
racklet_doc_eeprom() {
  grep -Eq '^BOOT_ORDER=0x[0-9a-f]*2' "$WORK/boot.conf"   # the simulated Pis boot over TFTP (2)
}
racklet_doc_power_on() {
  if [ "${2:-}" = discover ]; then
    # Pis the config does not name yet get no boot offer: they give up after 8 s.
    ip netns exec "$RACK_NS" racklet-boot simulate -i eth0 -n "$1" --kind rpi4 --seed 7 --dhcp-timeout 8s --log-level warn || true
  else
    # A real Pi whose boot failed starts over (BOOT_ORDER ends in f): so do these, once.
    ip netns exec "$RACK_NS" racklet-boot simulate -i eth0 -n "$1" --kind rpi4 --seed 7 --log-level warn ||
      { echo "racklet-doc: a Pi did not boot; powering the Pis on again" >&2
        ip netns exec "$RACK_NS" racklet-boot simulate -i eth0 -n "$1" --kind rpi4 --seed 7 --log-level warn; }
  fi
}
racklet_doc_prometheus() {
  curl -fsS "http://$SERVER_IP:80/metrics" | grep '^racklet_build_info' >/dev/null   # what Prometheus scrapes (grep -q would stop reading early: curl fails on the closed pipe under pipefail)
}
trap racklet_doc_stop_service EXIT
`

// guideScript turns the guide into one bash script for mode: the settings block
// replaced by the test's values, the other mode's blocks left out, each
// hardware block replaced by its stand-in.
func guideScript(t *testing.T, blocks []block, mode string, settings map[string]string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("set -euo pipefail\n")
	b.WriteString(`trap 'echo "racklet-doc: failed in the block at docs/real-rack.md:$RACKLET_DOC_LINE" >&2' ERR` + "\n")
	b.WriteString(standIns)
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	hardware := map[string]bool{}
	for _, bl := range blocks {
		fmt.Fprintf(&b, "RACKLET_DOC_LINE=%d; echo \"racklet-doc: block at line %d, $SECONDS s\" >&2\n", bl.line, bl.line)
		switch d := bl.directive; {
		case len(d) == 0:
			b.WriteString(bl.body)
		case d[0] == "settings":
			var guide []string
			for _, l := range strings.Split(bl.body, "\n") {
				if k, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
					guide = append(guide, k)
				}
			}
			sort.Strings(guide)
			if !slices.Equal(guide, names) {
				t.Fatalf("%s:%d: the guide's settings %v are not the ones the test sets %v", guideFile, bl.line, guide, names)
			}
			for _, k := range names {
				fmt.Fprintf(&b, "%s=%s\n", k, settings[k])
			}
		case d[0] == "proxy" || d[0] == "full":
			if d[0] == mode {
				b.WriteString(bl.body)
			}
		case d[0] == "hardware" && len(d) > 1:
			fn := "racklet_doc_" + strings.ReplaceAll(d[1], "-", "_")
			if !strings.Contains(standIns, fn+"()") {
				t.Fatalf("%s:%d: hardware block %q has no stand-in in the test", guideFile, bl.line, d[1])
			}
			hardware[d[1]] = true
			fmt.Fprintf(&b, "%s %s\n", fn, strings.Join(d[2:], " "))
		default:
			t.Fatalf("%s:%d: unknown directive %q", guideFile, bl.line, d)
		}
	}
	for _, want := range []string{"start-service", "eeprom", "power-on", "reload"} {
		if !hardware[want] {
			t.Errorf("the guide has no %q hardware step", want)
		}
	}
	return b.String()
}

// TestRealRackGuide runs docs/real-rack.md, every block in order, once in
// proxy mode beside a dnsmasq router and once in full mode, on a LAN of
// namespaces with simulated Pi 4s; then checks the server's record: both
// nodes known, each booted its kernel, its config reloads all applied.
func TestRealRackGuide(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces, the Debian base image and a DHCP server")
	// The guide uses racklet-boot eeprom (the Pi HTTP boot work) and the
	// Debian base images (examples/base), each from its own branch.
	for _, f := range []string{"../cmd/racklet-boot/eeprom.go", "../examples/base/debian.sh"} {
		if _, err := os.Stat(f); err != nil {
			testutil.Unavailable(t, "the guide needs "+f+", which is not in this tree yet")
		}
	}
	need(t, "ip", "dnsmasq", "curl", "jq", "go", "mmdebstrap")
	if err := netlab.Available(); err != nil {
		testutil.Unavailable(t, err.Error())
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := guideBlocks(t)
	for _, mode := range []string{"proxy", "full"} {
		t.Run(mode, func(t *testing.T) {
			l := newGuideLAN(t, mode)
			dir := t.TempDir()
			settings := map[string]string{
				"IFACE": l.iface, "SERVER_IP": l.server.String(), "SUBNET": l.subnet.String(), "ROUTER_IP": l.router.String(),
				"POOL_START": l.subnet.Addr().Next().Next().Next().String(), // .3
				"POOL_END":   netip.AddrFrom4([4]byte{l.subnet.Addr().As4()[0], l.subnet.Addr().As4()[1], l.subnet.Addr().As4()[2], 99}).String(),
				"BIN":        filepath.Join(dir, "bin"), "ETC": filepath.Join(dir, "etc"), "STATE": filepath.Join(dir, "state"),
				"IMAGES": filepath.Join(dir, "images"), "WORK": filepath.Join(dir, "work"), "BASE_OPTS": "--small",
			}
			text := guideScript(t, blocks, mode, settings)
			path := filepath.Join(dir, "guide.sh")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", path)
			cmd.Dir = repo
			cmd.Env = append(os.Environ(), "PATH="+settings["BIN"]+":"+os.Getenv("PATH"), "RACK_NS="+string(l.rack))
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				log, _ := os.ReadFile(filepath.Join(settings["WORK"], "racklet-boot.log"))
				t.Fatalf("the guide failed (%v) after %s:\n%s\nracklet-boot's log (end):\n%s", err, time.Since(start).Round(time.Second), tail(string(out), 6000), tail(string(log), 3000))
			}
			t.Logf("the guide ran in %s (%s mode); block start times:\n%s", time.Since(start).Round(time.Second), mode, strings.Join(lines(string(out), "racklet-doc: block"), "\n"))

			nodes, err := bootserver.ReadNodes(ctx, settings["STATE"], 200)
			if err != nil {
				t.Fatal(err)
			}
			booted := map[string]bool{}
			for _, n := range nodes {
				for _, e := range n.Events {
					if e.Type == "tftp.get" && strings.Contains(e.Detail, "vmlinuz") && strings.Contains(e.Detail, "outcome=ok") {
						booted[n.Name] = true
					}
				}
			}
			if !booted["pi-01"] || !booted["pi-02"] {
				t.Errorf("kernels served per node: %v, want pi-01 and pi-02\n%s", booted, tail(string(out), 4000))
			}
		})
	}
}

// TestRealRackGuideParses checks the guide's structure without running it:
// its directives, settings and stand-ins match this test, and the script
// for each mode is valid bash.
func TestRealRackGuideParses(t *testing.T) {
	bash := testutil.NeedTool(t, "bash")
	blocks := guideBlocks(t)
	settings := map[string]string{}
	for _, k := range []string{"IFACE", "SERVER_IP", "SUBNET", "ROUTER_IP", "POOL_START", "POOL_END", "BIN", "ETC", "STATE", "IMAGES", "WORK", "BASE_OPTS"} {
		settings[k] = "x"
	}
	for _, mode := range []string{"proxy", "full"} {
		path := filepath.Join(t.TempDir(), "guide.sh")
		if err := os.WriteFile(path, []byte(guideScript(t, blocks, mode, settings)), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bash, "-n", path).CombinedOutput(); err != nil {
			t.Errorf("%s mode: the guide is not valid bash: %v\n%s", mode, err, out)
		}
	}
}
