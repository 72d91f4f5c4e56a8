package dhcp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Client is what a DHCP request says about the machine that sent it.
// Classify fills it; it never looks anything up.
type Client struct {
	MAC net.HardwareAddr
	// Pi is set for a Raspberry Pi bootloader (by option 97, or by a Pi OUI
	// with a PXEClient:Arch:00000 vendor class when option 97 is not the
	// standard format).
	Pi bool
	// PiModel is 4 or 5 when the option 97 FourCC names it, 0 otherwise.
	PiModel int
	// Serial is the Pi serial's low 32 bits as 8 lower-case hex digits ("" when unknown).
	Serial string
	// BoardRev is the Pi board revision from option 97 (0 when unknown).
	BoardRev uint32
	// Opt97 is the raw client machine identifier (option 97), echoed to Pis.
	Opt97 []byte
	// Opt97MAC is set when option 97 is in the standard Pi format (a Pi 4
	// or 5 FourCC), whose bytes 9..12 are the low four bytes of the Pi's
	// MAC; MACLow holds them.
	Opt97MAC bool
	MACLow   [4]byte
	// Arch is the first option 93 value, -1 when absent.
	Arch int
	// PXE is set when option 60 starts with "PXEClient".
	PXE bool
	// HTTP is set for UEFI HTTP boot clients (option 60 "HTTPClient" or
	// option 93 15, 16, 18 or 19).
	HTTP bool
	// IPXE is set when option 77 carries "iPXE" or option 175 is present.
	IPXE bool
	// UBoot is set when option 60 starts with "U-Boot".
	UBoot bool
	// Agent is set for racklet-agent in a node's initramfs (option 60
	// AgentVendorClass): it wants racklet-boot's HTTP base URL.
	Agent bool
	// VendorClass is option 60 as sent.
	VendorClass string
	// Hostname is option 12 (truncated to 64 bytes).
	Hostname string
}

// Pi organisationally unique identifiers (Raspberry Pi Ltd and Trading).
var piOUIs = [][3]byte{
	{0xdc, 0xa6, 0x32}, {0xe4, 0x5f, 0x01}, {0x28, 0xcd, 0xc1},
	{0xd8, 0x3a, 0xdd}, {0x2c, 0xcf, 0x67}, {0xb8, 0x27, 0xeb},
}

// HasPiOUI reports whether mac belongs to a Raspberry Pi OUI.
func HasPiOUI(mac net.HardwareAddr) bool {
	if len(mac) != 6 {
		return false
	}
	for _, o := range piOUIs {
		if bytes.Equal(mac[:3], o[:]) {
			return true
		}
	}
	return false
}

// Option97 is a decoded Raspberry Pi client machine identifier (option 97).
type Option97 struct {
	FourCC   [4]byte
	Model    int // 4 or 5 for a known FourCC in either byte order, 0 otherwise
	BoardRev uint32
	MACLow   [4]byte
	Serial   string // low 32 bits of the serial, 8 lower-case hex digits
}

// ParseOption97 decodes a Pi option 97: 00, FourCC, board revision (LE),
// the low 4 MAC bytes, serial (LE). The old format (00 + the serial four
// times) and custom FourCCs decode with Model 0.
func ParseOption97(b []byte) (Option97, error) {
	var o Option97
	if len(b) != 17 || b[0] != 0 {
		return o, fmt.Errorf("option 97 is %d bytes starting %#x, want 17 starting 0x00", len(b), firstByte(b))
	}
	copy(o.FourCC[:], b[1:5])
	switch string(b[1:5]) {
	case "RPi4", "4iPR":
		o.Model = 4
	case "RPi5", "5iPR":
		o.Model = 5
	}
	o.BoardRev = binary.LittleEndian.Uint32(b[5:9])
	copy(o.MACLow[:], b[9:13])
	o.Serial = fmt.Sprintf("%08x", binary.LittleEndian.Uint32(b[13:17]))
	return o, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// Classify reads a request's identity and boot capabilities. It is pure.
func Classify(m *dhcpv4.DHCPv4) Client {
	c := Client{MAC: m.ClientHWAddr, Arch: -1}
	c.VendorClass = string(m.Options.Get(dhcpv4.OptionClassIdentifier))
	c.PXE = strings.HasPrefix(c.VendorClass, "PXEClient")
	c.UBoot = strings.HasPrefix(c.VendorClass, "U-Boot")
	c.Agent = c.VendorClass == AgentVendorClass
	if a := m.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(a) >= 2 {
		c.Arch = int(binary.BigEndian.Uint16(a))
	}
	switch c.Arch {
	case 15, 16, 18, 19:
		c.HTTP = true
	}
	if strings.HasPrefix(c.VendorClass, "HTTPClient") {
		c.HTTP = true
	}
	if m.Options.Has(optIPXEEncap) || hasIPXEUserClass(m.Options.Get(dhcpv4.OptionUserClassInformation)) {
		c.IPXE = true
	}
	if h := m.Options.Get(dhcpv4.OptionHostName); len(h) > 0 {
		c.Hostname = sanitizeHostname(h)
	}
	if b := m.Options.Get(dhcpv4.OptionClientMachineIdentifier); b != nil {
		c.Opt97 = append([]byte(nil), b...)
		if o, err := ParseOption97(b); err == nil {
			if o.Model != 0 {
				c.Pi, c.PiModel, c.Serial, c.BoardRev = true, o.Model, o.Serial, o.BoardRev
				c.Opt97MAC, c.MACLow = true, o.MACLow
			} else if piVendorClass(c.VendorClass) && HasPiOUI(c.MAC) {
				// Custom FourCC (DHCP_OPTION97) or the old format: the serial
				// sits in the last four bytes either way.
				c.Pi, c.Serial = true, o.Serial
				if string(o.FourCC[:]) != string(b[13:17]) {
					c.BoardRev = o.BoardRev
				}
			}
		}
	}
	if !c.Pi && c.Arch <= 0 && piVendorClass(c.VendorClass) && HasPiOUI(c.MAC) {
		c.Pi = true
	}
	if c.Pi {
		c.IPXE, c.HTTP, c.UBoot = false, false, false
	}
	return c
}

// optIPXEEncap is iPXE's encapsulated options (175).
const optIPXEEncap = dhcpv4.GenericOptionCode(175)

// piVendorClass reports the vendor class the Pi bootloader sends.
func piVendorClass(vc string) bool { return strings.HasPrefix(vc, "PXEClient:Arch:00000") }

// hasIPXEUserClass reads option 77 both as RFC 3004 (length-prefixed) and as
// the plain string iPXE actually sends.
func hasIPXEUserClass(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	if string(b) == "iPXE" {
		return true
	}
	for len(b) > 0 {
		n := int(b[0])
		if n == 0 || n+1 > len(b) {
			return false
		}
		if string(b[1:1+n]) == "iPXE" {
			return true
		}
		b = b[1+n:]
	}
	return false
}

func sanitizeHostname(h []byte) string {
	if len(h) > 64 {
		h = h[:64]
	}
	out := make([]byte, 0, len(h))
	for _, ch := range h {
		if ch > 0x20 && ch < 0x7f {
			out = append(out, ch)
		}
	}
	return string(out)
}

// AgentVendorClass is the option 60 racklet-agent sends, and racklet-boot
// echoes in the offer that carries its URL.
const AgentVendorClass = "racklet-agent"

// IsBootClient reports whether the client is a network-boot firmware,
// loader or racklet's own initramfs agent.
func (c Client) IsBootClient() bool { return c.Pi || c.PXE || c.HTTP || c.IPXE || c.UBoot || c.Agent }

// Kind names the client as recorded in store.Node.Kind: rpi4, rpi5, rpi,
// racklet-agent, ipxe, uefi-http, uefi-x86_64, uefi-x86, uefi-arm64,
// uefi-arm32, bios, uboot or "".
func (c Client) Kind() string {
	switch {
	case c.Agent:
		return AgentVendorClass
	case c.Pi && c.PiModel == 4:
		return "rpi4"
	case c.Pi && c.PiModel == 5:
		return "rpi5"
	case c.Pi:
		return "rpi"
	case c.IPXE:
		return "ipxe"
	case c.HTTP:
		return "uefi-http"
	case c.UBoot:
		return "uboot"
	}
	switch c.Arch {
	case 0:
		if c.PXE {
			return "bios"
		}
	case 6:
		return "uefi-x86"
	case 7, 9:
		return "uefi-x86_64"
	case 10:
		return "uefi-arm32"
	case 11:
		return "uefi-arm64"
	}
	return ""
}

// MACDashes renders a MAC as lower-case hex pairs joined by dashes
// (dc-a6-32-01-36-c2), as used in boot URLs and TFTP prefixes.
func MACDashes(mac net.HardwareAddr) string { return strings.ReplaceAll(mac.String(), ":", "-") }

// recallWindow is how long a DISCOVER's classification vouches for the
// client's later messages.
const recallWindow = 5 * time.Minute

// maxRecall bounds the classification cache (a flood of random MACs).
const maxRecall = 8192

// recall remembers how boot clients classified in their DISCOVER: the Pi's
// REQUEST carries no option 60 (and a custom-FourCC Pi is recognised only
// by it), so later messages inherit what the DISCOVER said.
type recall struct {
	mu   sync.Mutex
	seen map[string]recalled
}

type recalled struct {
	c  Client
	at time.Time
}

// apply records c when it is a DISCOVER from a boot client, and fills in a
// later message's classification from the DISCOVER.
func (r *recall) apply(mt dhcpv4.MessageType, c Client, now time.Time) Client {
	key := c.MAC.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if mt == dhcpv4.MessageTypeDiscover {
		if c.IsBootClient() {
			if r.seen == nil || len(r.seen) >= maxRecall {
				r.seen = map[string]recalled{}
			}
			r.seen[key] = recalled{c: c, at: now}
		}
		return c
	}
	prev, ok := r.seen[key]
	if !ok || now.Sub(prev.at) > recallWindow || c.IsBootClient() && !(prev.c.Pi && !c.Pi) {
		return c
	}
	merged := prev.c
	merged.Hostname = c.Hostname
	if c.Arch != -1 {
		merged.Arch = c.Arch
	}
	return merged
}
