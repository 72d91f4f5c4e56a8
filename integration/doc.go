// Package integration holds end-to-end tests: racklet-boot's real binary in
// network namespaces the tests create, against real peers nobody here wrote
// (udhcpc, dhclient, dnsmasq, curl, atftp, QEMU with its own firmware).
//
// They need root. Outside CI they skip, saying why, when root or a tool is
// missing; with CI=true they fail instead.
package integration
