package dhcp

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// DefaultPiMenu is the option 43 menu text the Pi bootloader matches by default.
const DefaultPiMenu = "Raspberry Pi Boot"

// maxPiMenu keeps option 43 within one 255-byte option.
const maxPiMenu = 240

// PiOption43 encodes the PXE vendor options the Pi bootloader wants, byte
// for byte as dnsmasq encodes pxe-service=0,"<menu>": discovery control 3,
// prompt (timeout 0, "PXE"), one boot menu item of type 0 with the text,
// end. Menu text longer than 240 bytes is cut.
func PiOption43(menu string) []byte {
	if len(menu) > maxPiMenu {
		menu = menu[:maxPiMenu]
	}
	b := make([]byte, 0, 15+len(menu))
	b = append(b, 6, 1, 3) // PXE_DISCOVERY_CONTROL: 3
	b = append(b, 10, 4, 0, 'P', 'X', 'E')
	b = append(b, 9, byte(3+len(menu)), 0, 0, byte(len(menu)))
	b = append(b, menu...)
	return append(b, 0xff)
}

// efiName picks the EFI binary for an arch when the node names none.
func efiName(efi string, arch int) string {
	if efi != "" {
		return efi
	}
	switch arch {
	case 6, 15:
		return "bootia32.efi"
	case 10, 18:
		return "bootarm.efi"
	case 11, 19, 22, 24:
		return "bootaa64.efi"
	}
	return "bootx64.efi"
}

// bootFile is the boot answer for one client.
type bootFile struct {
	siaddr      bool   // set siaddr (and option 66) to the server
	file        string // BOOTP file field and option 67
	vendorClass string // option 60 to echo ("" = none)
	pi          bool
}

// chooseBoot decides what to tell a boot client; ok is false for clients that
// get no boot answer (not a boot client).
func chooseBoot(s *Settings, c Client, efi string) (bootFile, bool) {
	port := s.HTTPPort
	if port == 0 {
		port = 80
	}
	base := fmt.Sprintf("http://%s", netip.AddrPortFrom(s.ServerAddr, uint16(port)))
	switch {
	case c.Pi:
		return bootFile{siaddr: true, vendorClass: "PXEClient", pi: true}, true
	case c.IPXE:
		return bootFile{siaddr: true, vendorClass: "PXEClient",
			file: base + "/ipxe/" + MACDashes(c.MAC) + "/boot.ipxe"}, true
	case c.HTTP:
		return bootFile{vendorClass: "HTTPClient",
			file: base + "/boot/" + MACDashes(c.MAC) + "/" + efiName(efi, c.Arch)}, true
	case c.UBoot:
		return bootFile{siaddr: true, file: efiName(efi, c.Arch)}, true
	case c.PXE && c.Arch == 0:
		return bootFile{siaddr: true, vendorClass: "PXEClient", file: "undionly.kpxe"}, true
	case c.PXE && c.Arch > 0:
		return bootFile{siaddr: true, vendorClass: "PXEClient", file: efiName(efi, c.Arch)}, true
	case c.PXE:
		// PXEClient without option 93: legacy BIOS ROMs.
		return bootFile{siaddr: true, vendorClass: "PXEClient", file: "undionly.kpxe"}, true
	}
	return bootFile{}, false
}

// applyBoot writes the boot answer into a reply.
func applyBoot(r *dhcpv4.DHCPv4, s *Settings, c Client, bf bootFile) {
	srv := net.IP(s.ServerAddr.AsSlice())
	if bf.vendorClass != "" {
		r.Options.Update(dhcpv4.OptClassIdentifier(bf.vendorClass))
	}
	if bf.siaddr {
		r.ServerIPAddr = srv
		r.Options.Update(dhcpv4.OptTFTPServerName(s.ServerAddr.String()))
	}
	if bf.file != "" {
		r.BootFileName = bf.file
		r.Options.Update(dhcpv4.OptBootFileName(bf.file))
	}
	if bf.pi {
		menu := s.PiMenu
		if menu == "" {
			menu = DefaultPiMenu
		}
		r.Options.Update(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, PiOption43(menu)))
		if len(c.Opt97) > 0 {
			r.Options.Update(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, c.Opt97))
		}
	}
	// PXE clients want option 97 (their GUID) echoed too (PXE spec 2.1).
	if bf.vendorClass == "PXEClient" && !bf.pi && len(c.Opt97) > 0 {
		r.Options.Update(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, c.Opt97))
	}
}
