// Package bmc is racklet-boot's side of each node's board-management
// controller, the RP2040 on its Racklet HAT: HATs connect to racklet-boot
// (over the rack LAN, or a USB/serial line the server opens), prove which
// HAT they are with a quote over racklet-boot's nonce, and from then on
// racklet-boot keeps the node's power as the config and the operators ask
// (hatlink PowerState/PowerSet/PowerCycle), reads its console into a
// bounded log per boot (consolelog), and points failed boots' timelines at
// the console lines around the failure. A HAT nobody enrolled is reported
// as a discovery (zero-touch enrolment) and not managed until approved.
//
// The wire is hatlink's frames (PROTOCOL.md, "Board management"), with
// racklet-boot as the host; the server never sends the commands that
// change what a node measured. docs/bmc.md describes the commands as built.
package bmc
