package rack

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// want is one expected problem: its line, field path and a piece of its message.
type want struct {
	line int
	path string
	msg  string
}

// full starts a full-mode config; the nodes list begins on line 9.
func full(lines ...string) string {
	return withHeader(append([]string{
		"  mode: full", // 6
		"  pool: {start: 10.0.0.100, end: 10.0.0.200}", // 7
		"nodes:", // 8
	}, lines...)...)
}

// pi is a valid Pi node of four lines.
func pi(name, serial string) []string {
	return []string{"  - name: " + name, "    kind: rpi4", "    serial: " + serial, "    boot: {dir: boot}"}
}

func cat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestValidationRules(t *testing.T) {
	file := bootDir(t)
	for _, tc := range []struct {
		name string
		yaml string
		want []want
	}{
		{"empty file", "", []want{{0, "", "empty"}}},
		{"only comments", "# nothing\n", []want{{0, "", "empty"}}},
		{"syntax error", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server 2", "dhcp: {}"), []want{{3, "", "yaml syntax: could not find expected ':'"}}},
		{"two documents", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server: {address: 10.0.0.2}", "dhcp: {mode: off}", "---", "a: 1"),
			[]want{{5, "", "single YAML document"}}},
		{"root is a list", y("- a", "- b"), []want{{1, "", "mapping"}}},
		{"apiVersion wrong", y("apiVersion: v1", "kind: Rack", "server: {address: 10.0.0.2}", "dhcp: {mode: proxy}"),
			[]want{{1, "apiVersion", "not supported"}}},
		{"kind wrong", y("apiVersion: racklet.io/v1alpha1", "kind: Pod", "server: {address: 10.0.0.2}", "dhcp: {mode: proxy}"),
			[]want{{2, "kind", "not supported"}}},
		{"apiVersion and kind missing", y("server: {address: 10.0.0.2}", "dhcp: {mode: proxy}"),
			[]want{{1, "apiVersion", "required"}, {1, "kind", "required"}}},
		{"unknown field", withHeader("  mode: proxy", "  poolSize: 3"), []want{{7, "dhcp.poolSize", "unknown field (known here: dns, domain"}}},
		{"field twice", withHeader("  mode: proxy", "  mode: full"), []want{{7, "dhcp.mode", "defined twice (first at line 6)"}}},
		{"merge key", withHeader("  mode: proxy", "  <<: {router: 10.0.0.1}"), []want{{7, "dhcp.<<", "merge keys"}}},
		{"server address missing", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server: {dataDir: /x}", "dhcp: {mode: proxy}"),
			[]want{{3, "server.address", "required"}}},
		{"server address IPv6", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server:", "  address: fe80::1", "dhcp: {mode: proxy}"),
			[]want{{4, "server.address", "not an IPv4 address"}}},
		{"server address unspecified", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server:", "  address: 0.0.0.0", "dhcp: {mode: proxy}"),
			[]want{{4, "server.address", "not a unicast"}}},
		{"server is a list", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server: [10.0.0.2]", "dhcp: {mode: proxy}"),
			[]want{{3, "server.address", "required"}, {3, "server", "must be a mapping"}}},
		{"port out of range", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server:", "  address: 10.0.0.2", "  httpPort: 70000", "dhcp: {mode: proxy}"),
			[]want{{5, "server.httpPort", "not a port"}}},
		{"interface name too long", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server:", "  address: 10.0.0.2", "  interface: enp0s31f6-longer-than-ifnamsiz", "dhcp: {mode: proxy}"),
			[]want{{5, "server.interface", "not a network interface name"}}},
		{"eeprom update on a bios node", full("  - name: pc", "    kind: bios", "    mac: 52:54:00:00:00:01", "    allowEEPROMUpdate: true", "    boot: {dir: boot}"),
			[]want{{12, "nodes[0].allowEEPROMUpdate", "only Raspberry Pi nodes"}}},
		{"dhcp mode missing", withHeader("  leaseTime: 1h"), []want{{5, "dhcp.mode", "required"}}},
		{"dhcp mode unknown", withHeader("  mode: relay"), []want{{6, "dhcp.mode", "not one of proxy, full, off"}}},
		{"full mode needs a pool", withHeader("  mode: full"), []want{{5, "dhcp.pool", "required in full mode"}}},
		{"pool start after end", withHeader("  mode: full", "  pool: {start: 10.0.0.200, end: 10.0.0.100}"),
			[]want{{7, "dhcp.pool", "start 10.0.0.200 is after end 10.0.0.100"}}},
		{"pool outside subnet", withHeader("  mode: full", "  pool: {start: 10.0.1.5, end: 10.0.0.100}"),
			[]want{{7, "dhcp.pool.start", "outside dhcp.subnet 10.0.0.0/24"}}},
		{"pool end missing", withHeader("  mode: full", "  pool: {start: 10.0.0.5}"), []want{{7, "dhcp.pool.end", "required"}}},
		{"pool contains server", withHeader("  mode: full", "  pool: {start: 10.0.0.1, end: 10.0.0.50}"),
			[]want{{7, "dhcp.pool", "contains server.address 10.0.0.2"}}},
		{"pool contains router", withHeader("  mode: full", "  pool: {start: 10.0.0.100, end: 10.0.0.200}", "  router: 10.0.0.150"),
			[]want{{7, "dhcp.pool", "contains dhcp.router 10.0.0.150"}}},
		{"router outside subnet", withHeader("  mode: full", "  pool: {start: 10.0.0.100, end: 10.0.0.200}", "  router: 10.0.1.1"),
			[]want{{8, "dhcp.router", "outside dhcp.subnet"}}},
		{"full mode: server outside the subnet", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server: {address: 192.168.1.2}",
			"dhcp:", "  mode: full", "  subnet: 10.0.0.0/24", "  pool: {start: 10.0.0.100, end: 10.0.0.200}"),
			[]want{{3, "server.address", "192.168.1.2 is outside dhcp.subnet 10.0.0.0/24"}}},
		{"full mode: server is the broadcast address", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server: {address: 10.0.0.255}",
			"dhcp:", "  mode: full", "  pool: {start: 10.0.0.100, end: 10.0.0.200}"),
			[]want{{3, "server.address", "network or broadcast address"}}},
		{"full mode: router is the network address", withHeader("  mode: full", "  pool: {start: 10.0.0.100, end: 10.0.0.200}", "  router: 10.0.0.0"),
			[]want{{8, "dhcp.router", "network or broadcast address"}}},
		{"full mode: pool ends on the broadcast address", withHeader("  mode: full", "  pool: {start: 10.0.0.100, end: 10.0.0.255}"),
			[]want{{7, "dhcp.pool.end", "network or broadcast address"}}},
		{"proxy mode with a pool", withHeader("  mode: proxy", "  pool: {start: 10.0.0.100, end: 10.0.0.200}"),
			[]want{{7, "dhcp.pool", "proxy mode never hands out addresses"}}},
		{"off mode with a pool", withHeader("  mode: off", "  pool: {start: 10.0.0.100, end: 10.0.0.200}"),
			[]want{{7, "dhcp.pool", "would never be used"}}},
		{"lease too short", withHeader("  mode: proxy", "  leaseTime: 30s"), []want{{7, "dhcp.leaseTime", "at least 1m"}}},
		{"lease without unit", withHeader("  mode: proxy", "  leaseTime: 3600"), []want{{7, "dhcp.leaseTime", "with a unit"}}},
		{"piMenu too long", withHeader("  mode: proxy", "  piMenu: "+strings.Repeat("x", 33)), []want{{7, "dhcp.piMenu", "is 33 bytes"}}},
		{"piMenu not ASCII", withHeader("  mode: proxy", "  piMenu: Raspberry Pi Böot"), []want{{7, "dhcp.piMenu", "printable ASCII"}}},
		{"dns not a list of addresses", withHeader("  mode: proxy", "  dns: [10.0.0.1, dns.google]"), []want{{7, "dhcp.dns[1]", "not an IPv4"}}},
		{"dns not a list", withHeader("  mode: proxy", "  dns: {a: 1}"), []want{{7, "dhcp.dns", "must be a list"}}},
		{"domain invalid", withHeader("  mode: proxy", "  domain: -bad-.example"), []want{{7, "dhcp.domain", "not a DNS domain"}}},
		{"bool invalid", withHeader("  mode: proxy", "boot: {allowEEPROMUpdate: maybe}"), []want{{7, "boot.allowEEPROMUpdate", "not true or false"}}},
		{"routerAdvertisements not a bool", y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server:", "  address: 10.0.0.2",
			"  routerAdvertisements: off", "dhcp: {mode: proxy}"), []want{{5, "server.routerAdvertisements", "not true or false"}}},
		{"unknownMachines unknown", withHeader("  mode: proxy", "unknownMachines: boot"), []want{{7, "unknownMachines", "not one of ignore"}}},
		{"enrolment unknown", withHeader("  mode: proxy", "enrolment: anyone"), []want{{7, "enrolment", "not one of preprovisioned, approve, tofu"}}},
		{"unknownMachines default without default", withHeader("  mode: proxy", "unknownMachines: default"),
			[]want{{7, "unknownMachines", "top-level default"}}},
		{"default boot checked", withHeader("  mode: proxy", "unknownMachines: default", "default: {dir: nowhere}"),
			[]want{{8, "default.dir", "does not exist"}}},
		{"nodes not a list", full("  name: x"), []want{{9, "nodes", "must be a list"}}},
		{"name not a DNS label", full(cat(pi("Pi_01", "5b154510"))...), []want{{9, "nodes[0].name", "not a DNS label"}}},
		{"name missing", full("  - kind: rpi4", "    serial: 5b154510", "    boot: {dir: boot}"), []want{{9, "nodes[0].name", "required"}}},
		{"duplicate name", full(cat(pi("pi-01", "5b154510"), pi("pi-01", "5b154511"))...),
			[]want{{13, "nodes[1].name", `also used by node "pi-01" (line 9)`}}},
		{"duplicate serial any case", full(cat(pi("pi-01", "5b154510"), pi("pi-02", "5B154510"))...),
			[]want{{15, "nodes[1].serial", "serial 5b154510 is also used"}}},
		{"duplicate mac", full(cat(pi("pi-01", "5b154510"), []string{"    mac: dc:a6:32:00:00:01"},
			pi("pi-02", "5b154511"), []string{"    mac: DC-A6-32-00-00-01"})...),
			[]want{{18, "nodes[1].mac", "mac dc:a6:32:00:00:01 is also used by node \"pi-01\""}}},
		{"duplicate address", full(cat(pi("pi-01", "5b154510"), []string{"    address: 10.0.0.9"},
			pi("pi-02", "5b154511"), []string{"    address: 10.0.0.9"})...),
			[]want{{18, "nodes[1].address", "address 10.0.0.9 is also used"}}},
		{"serial on a bios node", full("  - name: pc", "    kind: bios", "    serial: 5b154510", "    mac: 52:54:00:00:00:01", "    boot: {dir: boot}"),
			[]want{{11, "nodes[0].serial", "only Raspberry Pi nodes"}}},
		{"serial not 8 hex digits", full(cat(pi("pi-01", "5b15451"), pi("pi-02", "5b15451g"))...),
			[]want{{11, "nodes[0].serial", "exactly 8 hex"}, {15, "nodes[1].serial", "exactly 8 hex"}}},
		{"pi without mac or serial", full("  - name: pi-01", "    kind: rpi5", "    boot: {dir: boot}"),
			[]want{{9, "nodes[0]", "needs a mac or a serial"}}},
		{"bios without mac", full("  - name: pc", "    kind: bios", "    boot: {dir: boot}"), []want{{9, "nodes[0]", "needs a mac:"}}},
		{"mac too short", full(cat(pi("pi-01", "5b154510"), []string{"    mac: dc:a6:32:00:00"})...),
			[]want{{13, "nodes[0].mac", "not an Ethernet MAC"}}},
		{"kind unknown", full("  - name: pi", "    kind: rpi3", "    mac: dc:a6:32:00:00:01", "    boot: {dir: boot}"),
			[]want{{10, "nodes[0].kind", "not one of rpi4"}}},
		{"hat key malformed", full("  - name: pi", "    kind: rpi4", "    serial: 5b154510", "    hatKey: rsa:abc", "    boot: {dir: boot}"),
			[]want{{12, "nodes[0].hatKey", "not a HAT public key"}}},
		{"power unknown", full(cat(pi("pi-01", "5b154510"), []string{"    power: standby"})...),
			[]want{{13, "nodes[0].power", "not a power state: on or off"}}},
		{"root hash malformed", full("  - name: pi", "    kind: rpi4", "    serial: 5b154510", "    boot: {dir: boot, rootHash: abc}"),
			[]want{{12, "nodes[0].boot.rootHash", "not a SHA-256 dm-verity root hash"}}},
		{"kind missing", full("  - name: pi", "    mac: dc:a6:32:00:00:01", "    boot: {dir: boot}"), []want{{9, "nodes[0].kind", "required"}}},
		{"no boot source", full("  - name: pi", "    kind: rpi4", "    serial: 5b154510", "    boot: {kernel: k}"),
			[]want{{12, "nodes[0].boot", "needs a boot source"}}},
		{"two boot sources", full("  - name: pi", "    kind: rpi4", "    serial: 5b154510", "    boot: {dir: boot, image: r/x:1}"),
			[]want{{12, "nodes[0].boot.image", "only one of dir, fat or image (found dir and image)"}}},
		{"boot dir missing", full("  - name: pi", "    kind: rpi4", "    serial: 5b154510", "    boot:", "      dir: nowhere"),
			[]want{{13, "nodes[0].boot.dir", "/nowhere) does not exist"}}},
		{"boot dir is a file", full("  - name: pi", "    kind: rpi4", "    serial: 5b154510", "    boot: {dir: boot.vfat}"),
			[]want{{12, "nodes[0].boot.dir", "not a directory"}}},
		{"fat is a directory", full("  - name: pi", "    kind: rpi4", "    serial: 5b154510", "    boot: {fat: boot}"),
			[]want{{12, "nodes[0].boot.fat", "not a regular file"}}},
		{"kernel escapes the source", full("  - name: pc", "    kind: bios", "    mac: 52:54:00:00:00:01", "    boot:", "      dir: boot",
			"      kernel: ../../etc/shadow", "      initrd: [/etc/passwd]"),
			[]want{{14, "nodes[0].boot.kernel", "inside the boot source"}, {15, "nodes[0].boot.initrd[0]", "inside the boot source"}}},
		{"reservation outside subnet", full(cat(pi("pi-01", "5b154510"), []string{"    address: 10.0.1.9"})...),
			[]want{{13, "nodes[0].address", "outside dhcp.subnet"}}},
		{"reservation is the server", full(cat(pi("pi-01", "5b154510"), []string{"    address: 10.0.0.2"})...),
			[]want{{13, "nodes[0].address", "is server.address"}}},
		{"reservation is broadcast", full(cat(pi("pi-01", "5b154510"), []string{"    address: 10.0.0.255"})...),
			[]want{{13, "nodes[0].address", "broadcast"}}},
		{"every error, in line order", y(
			"kind: Rack",            // 1: apiVersion missing (reported at the root, line 1)
			"server:",               // 2
			"  address: 10.0.0.300", // 3
			"dhcp:",                 // 4
			"  mode: proxy",         // 5
			"  leaseTime: 1s",       // 6
			"nodes:",                // 7
			"  - name: a",           // 8
			"    kind: rpi9",        // 9
			"    boot: {}",          // 10
			"unknownMachines: all",  // 11
		), []want{
			{1, "apiVersion", "required"},
			{3, "server.address", "not an IPv4"},
			{6, "dhcp.leaseTime", "at least 1m"},
			{8, "nodes[0]", "needs a mac:"},
			{9, "nodes[0].kind", "not one of"},
			{10, "nodes[0].boot", "needs a boot source"},
			{11, "unknownMachines", "not one of"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, tc.yaml, file, tc.want) })
	}
}

// checkErrors parses data and checks that it is refused with exactly the
// wanted problems: their lines and paths in order, a piece of each message,
// and the file name.
func checkErrors(t *testing.T, data, file string, wants []want) {
	t.Helper()
	cfg, err := Parse([]byte(data), file)
	if err == nil {
		t.Fatalf("Parse = %+v; want a *ValidationError", cfg)
	}
	compareErrors(t, err, file, wants)
}

// compareErrors checks that err lists exactly wants, in order, in file.
func compareErrors(t *testing.T, err error, file string, wants []want) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v; want a *ValidationError", err)
	}
	got := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		got[i] = fmt.Sprintf("%d %s", fe.Line, fe.Path)
	}
	exp := make([]string, len(wants))
	for i, w := range wants {
		exp[i] = fmt.Sprintf("%d %s", w.line, w.path)
	}
	if diff := cmp.Diff(exp, got); diff != "" {
		t.Fatalf("errors (-want +got):\n%s\nfull error:\n%v", diff, err)
	}
	for i, w := range wants {
		if !strings.Contains(ve.Errors[i].Msg, w.msg) {
			t.Errorf("error %d = %q, want it to contain %q", i, ve.Errors[i].Msg, w.msg)
		}
		if ve.Errors[i].File != file {
			t.Errorf("error %d names file %q, want %q", i, ve.Errors[i].File, file)
		}
	}
}

// TestDidYouMean: an unknown key close to a known one is named.
func TestDidYouMean(t *testing.T) {
	for key, want := range map[string]string{
		"dataDirectory": "",
		"datadir":       `did you mean "dataDir"?`,
		"adress":        `did you mean "address"?`,
		"httpport":      `did you mean "httpPort"?`,
		"tftpPrt":       `did you mean "tftpPort"?`,
		"interfce":      `did you mean "interface"?`,
		"x":             "",
	} {
		text := "apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver:\n  address: 10.0.0.2\n  " + key + ": 1\ndhcp: {mode: proxy}\n"
		_, err := Parse([]byte(text), "rack.yaml")
		if err == nil || !strings.Contains(err.Error(), "server."+key+": unknown field") {
			t.Errorf("%s: error %v, want an unknown field", key, err)
			continue
		}
		if got := strings.Contains(err.Error(), "did you mean"); got != (want != "") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want %q", key, err, want)
		}
	}
}
