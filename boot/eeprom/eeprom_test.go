package eeprom

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/sign"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// rackYAML is a rack config with the dhcp section and server extras given.
func rackYAML(t *testing.T, dhcp, server string) *rack.Config {
	t.Helper()
	cfg, err := rack.Parse([]byte(`apiVersion: racklet.io/v1alpha1
kind: Rack
server:
  interface: eth0
  address: 10.0.0.2
  dataDir: /var/lib/racklet
`+server+`dhcp:
`+dhcp+`unknownMachines: ignore
nodes:
  - name: pi-01
    kind: rpi4
    serial: 5b154510
    boot: {dir: testdata}
`), "rack.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const (
	proxyDHCP = "  mode: proxy\n"
	fullDHCP  = "  mode: full\n  pool: {start: 10.0.0.100, end: 10.0.0.200}\n"
	offDHCP   = "  mode: off\n"
)

// TestGolden renders each case in every output format and compares it
// with testdata/NAME.FORMAT (go test -update rewrites them).
func TestGolden(t *testing.T) {
	pub := filepath.Join("testdata", "eeprom.pub")
	tests := map[string]struct {
		dhcp, server string
		opts         Options
	}{
		"tftp-proxy":        {dhcp: proxyDHCP},
		"tftp-full-mac":     {dhcp: fullDHCP, opts: Options{Prefix: PrefixMAC}},
		"tftp-dhcp-off":     {dhcp: offDHCP},
		"tftp-menu-sd":      {dhcp: proxyDHCP + "  piMenu: Rack 7 Boot\n", opts: Options{SDFirst: true}},
		"http":              {dhcp: fullDHCP, opts: Options{Mode: ModeHTTP, PubKeyFile: pub}},
		"http-port-path-sd": {dhcp: proxyDHCP, server: "  httpPort: 8080\n", opts: Options{Mode: ModeHTTP, PubKeyFile: pub, HTTPPath: "rack7", SDFirst: true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := For(rackYAML(t, tc.dhcp, tc.server), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var conf bytes.Buffer // the old spelling of table
			if err := s.Write(&conf, "conf"); err != nil {
				t.Fatal(err)
			}
			for _, format := range []string{"table", "json", "yaml"} {
				var b bytes.Buffer
				if err := s.Write(&b, format); err != nil {
					t.Fatal(err)
				}
				if format == "table" && b.String() != conf.String() {
					t.Errorf("-o conf differs from -o table:\n%s", conf.String())
				}
				ext := format
				if format == "table" {
					ext = "conf" // the boot.conf text
				}
				golden := filepath.Join("testdata", name+"."+ext)
				if *update {
					if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to write it)", err)
				}
				if diff := cmp.Diff(string(want), b.String()); diff != "" {
					t.Errorf("%s (-golden +got):\n%s", golden, diff)
				}
			}
		})
	}
}

// TestSettings checks the facts behind the golden files.
func TestSettings(t *testing.T) {
	pub := filepath.Join("testdata", "eeprom.pub")
	k, err := sign.LoadBootPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sign.KeyID(k)
	s, err := For(rackYAML(t, fullDHCP, ""), Options{Mode: ModeHTTP, PubKeyFile: pub})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, st := range s.Settings {
		got[st.Name] = st.Value
	}
	want := map[string]string{"BOOT_ORDER": "0xf7", "HTTP_HOST": "10.0.0.2", "HTTP_PORT": "80", "HTTP_PATH": "net_install"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("http settings (-want +got):\n%s", diff)
	}
	if s.PubKey == nil || s.PubKey.KeyID != id || !strings.Contains(s.Apply[0], "--pubkey "+pub) {
		t.Errorf("public key %+v, apply %q", s.PubKey, s.Apply)
	}
	s, err = For(rackYAML(t, offDHCP, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Settings[len(s.Settings)-1] != (Setting{"TFTP_IP", "10.0.0.2", s.Settings[len(s.Settings)-1].Why}) {
		t.Errorf("dhcp off: %+v, want TFTP_IP last", s.Settings)
	}
}

func TestErrors(t *testing.T) {
	tests := map[string]struct {
		dhcp, server string
		opts         Options
		want         string
		is           error
	}{
		"http without key":  {dhcp: proxyDHCP, opts: Options{Mode: ModeHTTP}, want: "--pubkey", is: ErrOptions},
		"http with ecdsa":   {dhcp: proxyDHCP, opts: Options{Mode: ModeHTTP, PubKeyFile: filepath.Join("testdata", "ecdsa.pub")}, is: sign.ErrNotRSA2048},
		"http missing key":  {dhcp: proxyDHCP, opts: Options{Mode: ModeHTTP, PubKeyFile: "testdata/nope.pub"}, want: "nope.pub"},
		"unknown mode":      {dhcp: proxyDHCP, opts: Options{Mode: "usb"}, want: `mode "usb"`, is: ErrOptions},
		"unknown prefix":    {dhcp: proxyDHCP, opts: Options{Prefix: "string"}, want: `prefix "string"`, is: ErrOptions},
		"tftp on port 6969": {dhcp: proxyDHCP, server: "  tftpPort: 6969\n", want: "port 69", is: ErrOptions},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := For(rackYAML(t, tc.dhcp, tc.server), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Errorf("For = %v, want an error containing %q (is %v)", err, tc.want, tc.is)
			}
		})
	}
	s, err := For(rackYAML(t, proxyDHCP, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(&bytes.Buffer{}, "xml"); err == nil || !strings.Contains(err.Error(), "conf, table, json or yaml") {
		t.Errorf("Write(xml) = %v", err)
	}
}
