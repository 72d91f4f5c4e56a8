// Package dhcp is racklet-boot's DHCPv4 server, built on
// github.com/insomniacslk/dhcp/dhcpv4 for packet encoding. It runs in one of
// two modes:
//
//   - full: it hands out addresses from a pool (static reservations for
//     known nodes, a client's previous address first, expired leases oldest
//     first, offers held for OfferHold) and boot options. A lease is written
//     to the LeaseStore before its ACK leaves, so a restart never gives one
//     address to two machines.
//   - proxy: beside another DHCP server (ProxyDHCP, RFC 4578 / PXE 2.1) it
//     answers boot clients only, with boot options and no address, on port
//     67 and 4011 (4011 replies go unicast to the client).
//
// Classify reads a request: a Raspberry Pi by option 97 (or a Pi OUI with
// the Pi's vendor class), the PXE arch from option 93, UEFI HTTP boot, iPXE
// (option 77 "iPXE" or option 175) and U-Boot. The boot answer per client:
//
//	Raspberry Pi  option 60 "PXEClient", 97 echoed, 43 (below), siaddr and 66 = server
//	iPXE          file/67 http://<server>:<port>/ipxe/<mac-with-dashes>/boot.ipxe, 60 "PXEClient"
//	UEFI HTTP     60 "HTTPClient", 67 http://<server>:<port>/boot/<mac-with-dashes>/<efi>
//	UEFI PXE      file/67 = the node's EFI name (bootx64.efi, bootaa64.efi... by arch), siaddr
//	BIOS PXE      file/67 undionly.kpxe, siaddr
//	U-Boot        file/67 = EFI name by arch, siaddr
//
// Option 43 for the Pi is the dnsmasq encoding of pxe-service=0,"<menu>"
// (see PiOption43); for "Raspberry Pi Boot":
//
//	06 01 03                 PXE discovery control = 3
//	0a 04 00 50 58 45        menu prompt: timeout 0, "PXE"
//	09 14 00 00 11 <17 bytes> boot menu: type 0, text length 0x11, "Raspberry Pi Boot"
//	ff                       end
//
// Option 97 from a Pi (see ParseOption97) is 00, a FourCC ("RPi4", "4iPR",
// "RPi5", "5iPR" or custom), the board revision (little-endian), the low 4
// MAC bytes and the low 32 bits of the serial (little-endian), which names
// the node as 8 lower-case hex digits. Option 97 is broadcast by every Pi
// and authenticates nothing: a request whose option 97 names a node's
// serial is that node only if the rack config pins no other MAC for it and
// the MAC bytes inside option 97 are the request's own; otherwise a
// dhcp.identity-conflict event goes to the node's log. A node record that
// changes MAC (a board swap) gets a node.mac-changed event.
//
// DECLINE is unauthenticated too: it is honoured only from the MAC holding
// that address's bound lease and naming this server, never for a node of
// the rack config; one MAC quarantines at most DeclinesPerMAC addresses per
// DeclineHold, and at most a quarter of the pool is quarantined at once.
//
// The Server holds live Settings behind an atomic pointer (Update swaps
// them on a config reload), asks an Inventory who a machine is, and records
// nodes and dhcp.* events in an EventSink off the reply path.
package dhcp
