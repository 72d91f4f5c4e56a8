// Package pisim simulates the network-boot side of Raspberry Pi 4 and Pi 5
// bootloaders: the DHCP client, the TFTP client and the order in which the
// firmware asks for files. It is a peer of racklet-boot's server written
// from the wire facts in docs/design.md only: DHCP and TFTP are encoded and
// decoded by hand here, so a mistake on the server side cannot hide behind a
// shared helper.
//
// # DHCP
//
// A Pi broadcasts a DISCOVER with options 53, 55, 60, 93, 94, 97 in that
// order, retries every 4 s and gives up after 45 s. A reply is a boot offer
// when its option 43 carries a PXE menu (sub-option 9) whose text contains
// the configured menu string (default "Raspberry Pi Boot"). An address offer
// is any offer with a non-zero yiaddr. One offer may be both (full mode);
// in proxy mode the address comes from the router's offer and the boot
// settings from racklet-boot's, and the Pi REQUESTs only the address offer
// (options 50 and 54, never option 60).
//
// The TFTP server is taken from the boot offer (the ACK when it carries
// option 43 itself), in this order: siaddr when non-zero, then option 66
// when it is a dotted IPv4 address, then option 54 of the boot offer. So in
// proxy mode the Pi talks to the proxy, not to the router, as a real CM4 did.
// Result.TFTPSource records which one was used.
//
// The BOOTP broadcast flag is clear by default, as on real Pis: a server must
// deliver its unicast replies to a client that has no address yet. The
// macvlan transport therefore receives DHCP on a packet socket, like the
// firmware's own network stack would.
//
// # TFTP
//
// Each read request carries "tsize 0" and "blksize" (1468 by default, 1024
// for older firmware). Existence probes send ERROR 0 "Early terminate" right
// after the OACK (or DATA 1 when the server ignored the options) and the
// real read follows as a new request. Block numbers roll over to 0. A whole
// file must arrive within FileTimeout (30 s, the firmware's
// TFTP_FILE_TIMEOUT); a slower file fails the boot.
//
// # Transports
//
// Pi.Boot runs a Pi on a macvlan of a Linux interface (root needed). BootOn
// takes any Transport; UDPTransport runs a Pi against loopback sockets so
// unit tests need no privileges. MacvlanTransport.NetNS puts the macvlans
// and sockets in a named network namespace (ip netns) without moving the
// process there.
//
// # Use
//
//	pis := pisim.NewPis(10, 4, 1)                 // ten Pi 4s, serials and MACs from seed 1
//	results := pisim.RunRack(ctx, "eth0", pis, 4) // at most four boot at once
//	pisim.WriteTable(os.Stdout, results)          // or json.Marshal(results), or r.String()
//	sum := pisim.Summarize(results)               // booted, failed, conflicting leases
//
// A Result's Steps are the timeline (time offset, op, file, bytes, result);
// KernelLoaded is the verdict. The error from Pi.Boot is only for a boot
// that could not start; a boot that fails on the wire is a Result.
package pisim
