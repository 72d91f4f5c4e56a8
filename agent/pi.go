package agent

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// DeviceTree is where Linux shows the device tree the firmware passed.
const DeviceTree = "/sys/firmware/devicetree/base"

// PiOption97 is the DHCP client machine identifier (option 97) a Raspberry
// Pi 4 or 5 bootloader sends, built the same way from what its firmware put
// in the device tree under dt: 00, the FourCC "RPi4" or "RPi5" (from the
// SoC in /compatible: bcm2711 or bcm2712), the board revision
// (/system/linux,revision, little-endian), the low four bytes of mac and
// the low 32 bits of /serial-number (little-endian). With it racklet-boot
// recognises the agent as the node its rack config names by serial only,
// as it recognised the firmware a moment before; without it such a node
// is an unknown machine to DHCP. ok is false on anything but a Pi 4 or 5
// (QEMU, a PC), which then identifies by its MAC alone.
//
// Like the firmware's, it authenticates nothing: racklet-boot checks that
// the MAC bytes inside match the request's, and only attestation releases
// secrets.
func PiOption97(dt string, mac net.HardwareAddr) (opt []byte, ok bool, err error) {
	compat, err := os.ReadFile(filepath.Join(dt, "compatible"))
	if err != nil {
		return nil, false, nil // no device tree: not a Pi
	}
	var fourCC string
	for _, c := range bytes.Split(compat, []byte{0}) {
		switch string(c) {
		case "brcm,bcm2711":
			fourCC = "RPi4"
		case "brcm,bcm2712":
			fourCC = "RPi5"
		}
	}
	if fourCC == "" {
		return nil, false, nil
	}
	if len(mac) != 6 {
		return nil, false, fmt.Errorf("option 97: interface MAC %s is not 6 bytes", mac)
	}
	sn, err := os.ReadFile(filepath.Join(dt, "serial-number"))
	if err != nil {
		return nil, false, fmt.Errorf("option 97: read the Pi's serial number: %w", err)
	}
	s := strings.TrimRight(string(sn), "\x00\n ")
	if len(s) < 8 {
		return nil, false, fmt.Errorf("option 97: serial number %q is shorter than 8 hex digits", s)
	}
	low, err := hex.DecodeString(s[len(s)-8:])
	if err != nil {
		return nil, false, fmt.Errorf("option 97: serial number %q is not hex", s)
	}
	rev, err := os.ReadFile(filepath.Join(dt, "system", "linux,revision"))
	if err != nil || len(rev) != 4 {
		return nil, false, fmt.Errorf("option 97: read the board revision (/system/linux,revision): %d bytes, %v", len(rev), err)
	}
	opt = make([]byte, 0, 17)
	opt = append(opt, 0)
	opt = append(opt, fourCC...)
	opt = binary.LittleEndian.AppendUint32(opt, binary.BigEndian.Uint32(rev))
	opt = append(opt, mac[2:6]...)
	opt = binary.LittleEndian.AppendUint32(opt, binary.BigEndian.Uint32(low))
	return opt, true, nil
}
