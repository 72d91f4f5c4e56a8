// Package server is racklet-boot's running server as a library: New wires
// DHCP, TFTP, HTTP, the resolver, the image store and attestation around
// one node index (inventory) and one state store (store, bbolt); Run serves
// until its context ends; Reload swaps in a new rack config without
// dropping a request. `racklet-boot serve` is flags → Options → New → Run,
// and tests drive the same Server with no binary.
//
// What is wired, and where a new piece goes:
//
//	config ─► inventory.Live ─┬─► dhcp.Settings.Inventory (dhcpInventory)
//	                          ├─► resolve.Resolver ◄── imagestore.Booter (imageSource)
//	                          ├─► attestation expectations (expectedBoot)
//	                          └─► node API (nodeReader) and store node records (syncNodes)
//	resolve.Resolver ─► tftp.Server, httpboot.Server (boot files)
//	dhcp.Server lease table ─► resolve.Clients (clientLookup, ARP in proxy mode)
//
// A component is a field of Server made in New, a line in Reload if the
// config steers it, and a listener or goroutine in Run (see components).
package server
