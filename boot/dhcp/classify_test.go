package dhcp

import (
	"encoding/hex"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// piVC is the vendor class every Pi bootloader sends.
const piVC = "PXEClient:Arch:00000:UNDI:002001"

// discoverWith builds a DISCOVER from mac with the given options.
func discoverWith(t testing.TB, mac string, opts ...dhcpv4.Option) *dhcpv4.DHCPv4 {
	t.Helper()
	mods := []dhcpv4.Modifier{}
	for _, o := range opts {
		mods = append(mods, dhcpv4.WithOption(o))
	}
	m, err := dhcpv4.NewDiscovery(mustMAC(t, mac), mods...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func arch(v uint16) dhcpv4.Option {
	return dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{byte(v >> 8), byte(v)})
}

func opt97(b []byte) dhcpv4.Option {
	return dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, b)
}

// classified is the comparable part of a Client.
type classified struct {
	Pi       bool
	PiModel  int
	Serial   string
	BoardRev uint32
	Arch     int
	PXE      bool
	HTTP     bool
	IPXE     bool
	UBoot    bool
	Kind     string
	Boot     bool
}

func project(c Client) classified {
	return classified{c.Pi, c.PiModel, c.Serial, c.BoardRev, c.Arch, c.PXE, c.HTTP, c.IPXE, c.UBoot, c.Kind(), c.IsBootClient()}
}

func TestClassify(t *testing.T) {
	// The real Pi 4 option 97 from docs/design.md, and variants of it.
	real4 := "00" + "52506934" + "1131a000" + "322ef8ed" + "1045155b"
	tests := map[string]struct {
		mac  string
		opts []dhcpv4.Option
		want classified
	}{
		"pi4 RPi4 order": {"dc:a6:32:2e:f8:ed", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, real4))},
			classified{Pi: true, PiModel: 4, Serial: "5b154510", BoardRev: 0x00a03111, Arch: 0, PXE: true, Kind: "rpi4", Boot: true}},
		"pi4 4iPR order": {"dc:a6:32:2e:f8:ed", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00"+"34695052"+"1131a000322ef8ed1045155b"))},
			classified{Pi: true, PiModel: 4, Serial: "5b154510", BoardRev: 0x00a03111, Arch: 0, PXE: true, Kind: "rpi4", Boot: true}},
		"pi5 RPi5": {"2c:cf:67:01:02:03", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00"+"52506935"+"17400d00"+"67010203"+"efbeadde"))},
			classified{Pi: true, PiModel: 5, Serial: "deadbeef", BoardRev: 0x000d4017, Arch: 0, PXE: true, Kind: "rpi5", Boot: true}},
		"pi5 5iPR": {"d8:3a:dd:01:02:03", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00"+"35695052"+"17400d00"+"dd010203"+"78563412"))},
			classified{Pi: true, PiModel: 5, Serial: "12345678", BoardRev: 0x000d4017, Arch: 0, PXE: true, Kind: "rpi5", Boot: true}},
		"pi4 FourCC wins over non-Pi OUI": {"02:00:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, real4))},
			classified{Pi: true, PiModel: 4, Serial: "5b154510", BoardRev: 0x00a03111, Arch: 0, PXE: true, Kind: "rpi4", Boot: true}},
		"custom FourCC with Pi OUI": {"e4:5f:01:aa:bb:cc", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00"+"41424344"+"1131a000"+"01aabbcc"+"1045155b"))},
			classified{Pi: true, Serial: "5b154510", BoardRev: 0x00a03111, Arch: 0, PXE: true, Kind: "rpi", Boot: true}},
		"custom FourCC without Pi OUI is plain BIOS PXE": {"52:54:00:12:34:56", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00"+"41424344"+"1131a000"+"00123456"+"1045155b"))},
			classified{Arch: 0, PXE: true, Kind: "bios", Boot: true}},
		"old format serial repeated": {"dc:a6:32:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00"+"1045155b1045155b1045155b1045155b"))},
			classified{Pi: true, Serial: "5b154510", Arch: 0, PXE: true, Kind: "rpi", Boot: true}},
		"OUI fallback without option 97": {"b8:27:eb:00:00:02", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0)},
			classified{Pi: true, Arch: 0, PXE: true, Kind: "rpi", Boot: true}},
		"Pi OUI running Linux is no boot client": {"dc:a6:32:00:00:03", []dhcpv4.Option{dhcpv4.OptClassIdentifier("udhcp 1.36.1")},
			classified{Arch: -1, Kind: ""}},
		"short option 97 falls back to OUI": {"28:cd:c1:00:00:04", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97([]byte{0, 1, 2})},
			classified{Pi: true, Arch: 0, PXE: true, Kind: "rpi", Boot: true}},
		"BIOS PXE": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0)},
			classified{Arch: 0, PXE: true, Kind: "bios", Boot: true}},
		"UEFI ia32": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00006:UNDI:003000"), arch(6)},
			classified{Arch: 6, PXE: true, Kind: "uefi-x86", Boot: true}},
		"UEFI x86-64": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"), arch(7)},
			classified{Arch: 7, PXE: true, Kind: "uefi-x86_64", Boot: true}},
		"UEFI EBC as x86-64": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00009:UNDI:003000"), arch(9)},
			classified{Arch: 9, PXE: true, Kind: "uefi-x86_64", Boot: true}},
		"UEFI arm32": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00010:UNDI:003000"), arch(10)},
			classified{Arch: 10, PXE: true, Kind: "uefi-arm32", Boot: true}},
		"UEFI arm64": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("PXEClient:Arch:00011:UNDI:003000"), arch(11)},
			classified{Arch: 11, PXE: true, Kind: "uefi-arm64", Boot: true}},
		"UEFI HTTP x86": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("HTTPClient:Arch:00015:UNDI:003000"), arch(15)},
			classified{Arch: 15, HTTP: true, Kind: "uefi-http", Boot: true}},
		"UEFI HTTP x86-64": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003000"), arch(16)},
			classified{Arch: 16, HTTP: true, Kind: "uefi-http", Boot: true}},
		"UEFI HTTP arm32 by arch only": {"52:54:00:00:00:01", []dhcpv4.Option{arch(18)},
			classified{Arch: 18, HTTP: true, Kind: "uefi-http", Boot: true}},
		"UEFI HTTP arm64": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("HTTPClient:Arch:00019:UNDI:003000"), arch(19)},
			classified{Arch: 19, HTTP: true, Kind: "uefi-http", Boot: true}},
		"HTTPClient vendor class without arch": {"52:54:00:00:00:01", []dhcpv4.Option{dhcpv4.OptClassIdentifier("HTTPClient")},
			classified{Arch: -1, HTTP: true, Kind: "uefi-http", Boot: true}},
		"iPXE user class": {"52:54:00:12:34:56", []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), dhcpv4.OptUserClass("iPXE")},
			classified{Arch: 0, PXE: true, IPXE: true, Kind: "ipxe", Boot: true}},
		"iPXE RFC 3004 user class": {"52:54:00:12:34:56", []dhcpv4.Option{arch(7), dhcpv4.OptRFC3004UserClass([]string{"foo", "iPXE"})},
			classified{Arch: 7, IPXE: true, Kind: "ipxe", Boot: true}},
		"iPXE option 175 only": {"52:54:00:12:34:56", []dhcpv4.Option{dhcpv4.OptGeneric(optIPXEEncap, []byte{0x13, 1, 1})},
			classified{Arch: -1, IPXE: true, Kind: "ipxe", Boot: true}},
		"U-Boot": {"02:11:22:33:44:55", []dhcpv4.Option{dhcpv4.OptClassIdentifier("U-Boot.armv8"), arch(22)},
			classified{Arch: 22, UBoot: true, Kind: "uboot", Boot: true}},
		"plain client": {"02:11:22:33:44:55", nil,
			classified{Arch: -1}},
		"one-byte option 93 ignored": {"02:11:22:33:44:55", []dhcpv4.Option{dhcpv4.OptGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{7})},
			classified{Arch: -1}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := project(Classify(discoverWith(t, tc.mac, tc.opts...)))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Classify (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseOption97(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    Option97
		wantErr bool
	}{
		"design example": {in: "00525069341131a000322ef8ed1045155b",
			want: Option97{FourCC: [4]byte{'R', 'P', 'i', '4'}, Model: 4, BoardRev: 0x00a03111, MACLow: [4]byte{0x32, 0x2e, 0xf8, 0xed}, Serial: "5b154510"}},
		"too short":      {in: "0052506934", wantErr: true},
		"bad first byte": {in: "01525069341131a000322ef8ed1045155b", wantErr: true},
		"empty":          {in: "", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseOption97(mustHex(t, tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); !tc.wantErr && diff != "" {
				t.Errorf("ParseOption97 (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPiOption43(t *testing.T) {
	tests := map[string]struct {
		menu string
		want string
	}{
		"default menu": {DefaultPiMenu, "0601030a04005058450914000011" + hex.EncodeToString([]byte("Raspberry Pi Boot")) + "ff"},
		"custom menu":  {"Racklet", "0601030a0400505845090a000007" + hex.EncodeToString([]byte("Racklet")) + "ff"},
		"empty menu":   {"", "0601030a04005058450903000000ff"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, hex.EncodeToString(PiOption43(tc.menu))); diff != "" {
				t.Errorf("PiOption43 (-want +got):\n%s", diff)
			}
		})
	}
	if got := len(PiOption43(string(make([]byte, 400)))); got != 255 {
		t.Errorf("long menu: option 43 is %d bytes, want 255", got)
	}
}
