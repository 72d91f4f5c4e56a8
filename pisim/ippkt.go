package pisim

import "encoding/binary"

// This file reads the IPv4/UDP headers of frames from the packet socket.

// udpPayload returns the payload of an unfragmented IPv4 UDP packet to port.
func udpPayload(pkt []byte, port uint16) ([]byte, bool) {
	if len(pkt) < 20 || pkt[0]>>4 != 4 || pkt[9] != 17 /* UDP */ {
		return nil, false
	}
	ihl := int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < 20 || total > len(pkt) || total < ihl+8 || binary.BigEndian.Uint16(pkt[6:])&0x3fff != 0 {
		return nil, false
	}
	udp := pkt[ihl:total]
	ulen := int(binary.BigEndian.Uint16(udp[4:]))
	if binary.BigEndian.Uint16(udp[2:]) != port || ulen < 8 || ulen > len(udp) {
		return nil, false
	}
	return udp[8:ulen], true
}
