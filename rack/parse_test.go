package rack

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// y joins lines into a YAML document; line i of the file is argument i.
func y(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// bootDir makes a temp dir with a boot/ directory and a boot.vfat file, and
// returns the config file name to parse against.
func bootDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot.vfat"), []byte("fat"), 0o644); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "rack.yaml")
}

// header is the first 5 lines of every valid test config (full mode).
var header = []string{
	"apiVersion: racklet.io/v1alpha1", // 1
	"kind: Rack",                      // 2
	"server:",                         // 3
	"  address: 10.0.0.2",             // 4
	"dhcp:",                           // 5
}

func withHeader(lines ...string) string { return y(append(append([]string{}, header...), lines...)...) }

// nodeConfig is a proxy-mode config with one Pi named name, on line 8.
func nodeConfig(name string) string {
	return withHeader("  mode: proxy", "nodes:", "  - name: "+name, "    kind: rpi4", "    serial: 5b154510", "    boot: {dir: boot}")
}

func TestParseValid(t *testing.T) {
	file := bootDir(t)
	base := filepath.Dir(file)
	cfg, err := Parse([]byte(withHeader(
		"  mode: full", // 6
		"  pool: {start: 10.0.0.100, end: 10.0.0.200}",
		"  router: 10.0.0.1",
		"  dns: [10.0.0.1]",
		"nodes:", // 10
		"  - name: pi-01",
		"    kind: rpi4",
		"    serial: 5B154510",
		"    mac: DC:A6:32:00:00:01",
		"    address: 10.0.0.11", // 15
		"    allowEEPROMUpdate: true",
		"    boot: {dir: boot}",
		"  - name: pc-01", // 18
		"    kind: bios",
		"    mac: 52-54-00-99-00-a1", // 20
		"    boot: {fat: boot.vfat, kernel: vmlinuz, initrd: initrd.gz}",
	)), file)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	yes := true
	want := &Config{
		APIVersion: APIVersion, Kind: Kind,
		Server: Server{Address: netip.MustParseAddr("10.0.0.2"), DataDir: DefaultDataDir, HTTPPort: 80, TFTPPort: 69},
		DHCP: DHCP{
			Mode:      DHCPFull,
			Pool:      &Pool{Start: netip.MustParseAddr("10.0.0.100"), End: netip.MustParseAddr("10.0.0.200")},
			Subnet:    netip.MustParsePrefix("10.0.0.0/24"),
			Router:    netip.MustParseAddr("10.0.0.1"),
			DNS:       []netip.Addr{netip.MustParseAddr("10.0.0.1")},
			LeaseTime: time.Hour,
			PiMenu:    "Raspberry Pi Boot",
		},
		UnknownMachines: UnknownIgnore,
		Nodes: []Node{
			{Name: "pi-01", Kind: KindRPi4, Serial: "5b154510", MAC: mustMAC("dc:a6:32:00:00:01"),
				Address: netip.MustParseAddr("10.0.0.11"), AllowEEPROMUpdate: &yes,
				Boot: Boot{Dir: filepath.Join(base, "boot")}, Line: 11},
			{Name: "pc-01", Kind: KindBIOS, MAC: mustMAC("52:54:00:99:00:a1"),
				Boot: Boot{FAT: filepath.Join(base, "boot.vfat"), Kernel: "vmlinuz", Initrd: []string{"initrd.gz"}}, Line: 18},
		},
	}
	if diff := cmp.Diff(want, cfg, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestDefaults(t *testing.T) {
	file := bootDir(t)
	cfg, err := Parse([]byte(withHeader("  mode: proxy", "  subnet: 10.0.0.77/16")), file)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.DHCP.Subnet, netip.MustParsePrefix("10.0.0.0/16"); got != want {
		t.Errorf("subnet %s, want it masked to %s", got, want)
	}
	cfg, err = Parse([]byte(y("apiVersion: racklet.io/v1alpha1", "kind: Rack", "server: {address: 192.168.7.9, dataDir: state}",
		"dhcp: {mode: off, leaseTime: 30m, piMenu: PXE}")), file)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%v %v %v %v %v", cfg.DHCP.Subnet, cfg.DHCP.LeaseTime, cfg.DHCP.PiMenu, cfg.Server.DataDir, cfg.UnknownMachines)
	want := fmt.Sprintf("%v %v %v %v %v", "192.168.7.0/24", 30*time.Minute, "PXE", filepath.Join(filepath.Dir(file), "state"), "ignore")
	if got != want {
		t.Errorf("defaults = %s, want %s", got, want)
	}
}

func TestExamplesValid(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("found examples %v (%v), want at least rack.yaml and rack-full.yaml", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := Load(f)
			if err != nil {
				t.Fatalf("example does not validate:\n%v", err)
			}
			if len(cfg.Nodes) == 0 {
				t.Error("example names no nodes")
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v, want os.ErrNotExist", err)
	}
	file := bootDir(t)
	if err := os.WriteFile(file, []byte("kind: Rack\nbogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Load(file)
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Load of a bad file: %v, want a *ValidationError wrapping ErrInvalid", err)
	}
	if !strings.HasPrefix(err.Error(), file+":1:1: apiVersion: required") {
		t.Errorf("first line of the error = %q, want it to start with %s:1:1: apiVersion: required", err, file)
	}
	if !strings.Contains(err.Error(), file+":2:1: bogus: unknown field") {
		t.Errorf("error %q does not report the unknown field with its line", err)
	}
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
