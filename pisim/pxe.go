package pisim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// The PXE strings and option values the Pi bootloader sends (docs/design.md).
const (
	piClassID = "PXEClient:Arch:00000:UNDI:002001"
	// DefaultMenu is the option 43 menu text the bootloader looks for unless
	// the EEPROM's PXE_OPTION43 changes it.
	DefaultMenu = "Raspberry Pi Boot"
)

// FourCC values for option 97. FourCCOld selects the old option 97 format
// (DHCP_OPTION97=0): the serial repeated four times.
const (
	FourCCPi4    = "RPi4"
	FourCCPi4New = "4iPR"
	FourCCPi5    = "RPi5"
	FourCCPi5New = "5iPR"
	FourCCOld    = "old"
)

// piParamList is option 55 as the Pi sends it: 1, 3, 43, 60, 66, 67, 128–135.
var piParamList = []byte{1, 3, 43, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135}

// PXE vendor sub-options inside option 43.
const (
	pxeDiscoveryControl = 6
	pxeBootMenu         = 9
	pxeMenuPrompt       = 10
)

// Sentinel errors for boot offers the firmware ignores.
var (
	// ErrNoVendorOptions means a reply had no option 43.
	ErrNoVendorOptions = errors.New("no option 43 (PXE vendor options)")
	// ErrNoMenu means option 43 had no boot menu (sub-option 9).
	ErrNoMenu = errors.New("option 43 has no boot menu (sub-option 9)")
	// ErrMenuMismatch means the boot menu did not contain the menu string.
	ErrMenuMismatch = errors.New("option 43 boot menu does not contain the expected text")
)

// option97 builds the 17-byte client GUID option: 00, FourCC, board
// revision (little-endian), the low 4 MAC bytes (wire order) and the low 32
// bits of the serial (little-endian). fourcc FourCCOld repeats the serial
// four times instead.
func option97(fourcc string, boardRev uint32, mac []byte, serial uint32) ([]byte, error) {
	b := make([]byte, 1, 17)
	if fourcc == FourCCOld {
		for range 4 {
			b = binary.LittleEndian.AppendUint32(b, serial)
		}
		return b, nil
	}
	if len(fourcc) != 4 {
		return nil, fmt.Errorf("fourcc %q: want exactly 4 bytes or %q", fourcc, FourCCOld)
	}
	if len(mac) < 4 {
		return nil, fmt.Errorf("mac address %x too short", mac)
	}
	b = append(b, fourcc...)
	b = binary.LittleEndian.AppendUint32(b, boardRev)
	b = append(b, mac[len(mac)-4:]...)
	b = binary.LittleEndian.AppendUint32(b, serial)
	return b, nil
}

// pxeSubOpts splits option 43 into PXE sub-options (code → data). Pad bytes
// are skipped, 255 ends the list; a truncated sub-option is an error.
func pxeSubOpts(b []byte) (map[byte][]byte, error) {
	subs := map[byte][]byte{}
	for len(b) > 0 {
		code := b[0]
		if code == 255 {
			break
		}
		if code == 0 {
			b = b[1:]
			continue
		}
		if len(b) < 2 || len(b) < 2+int(b[1]) {
			return nil, fmt.Errorf("option 43 sub-option %d truncated", code)
		}
		if _, dup := subs[code]; !dup {
			subs[code] = b[2 : 2+int(b[1])]
		}
		b = b[2+int(b[1]):]
	}
	return subs, nil
}

// checkMenu applies the bootloader's test to option 43: a boot menu
// (sub-option 9) whose bytes contain menu. An empty menu means DefaultMenu.
func checkMenu(opt43 []byte, present bool, menu string) error {
	if !present {
		return ErrNoVendorOptions
	}
	if menu == "" {
		menu = DefaultMenu
	}
	subs, err := pxeSubOpts(opt43)
	if err != nil {
		return err
	}
	m, ok := subs[pxeBootMenu]
	if !ok {
		return ErrNoMenu
	}
	if !bytes.Contains(m, []byte(menu)) {
		return fmt.Errorf("%w %q: menu is %q", ErrMenuMismatch, menu, menuText(m))
	}
	return nil
}

// menuText returns the printable text of a boot menu for error messages.
func menuText(m []byte) string {
	if len(m) >= 3 && int(m[2]) <= len(m)-3 {
		return string(m[3 : 3+int(m[2])])
	}
	return string(m)
}
