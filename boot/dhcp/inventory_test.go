package dhcp

import (
	"net"
	"net/netip"
	"strings"
)

// testNode is a machine of a testInventory.
type testNode struct {
	Name, Serial string
	MAC          net.HardwareAddr
	Address      netip.Addr
	EFI          string
}

// testInventory is an Inventory over a list of machines.
type testInventory []testNode

func (inv testInventory) find(match func(testNode) bool) (Node, bool) {
	for _, n := range inv {
		if match(n) {
			return Node{Name: n.Name, Address: n.Address, EFI: n.EFI}, true
		}
	}
	return Node{}, false
}

func (inv testInventory) NodeBySerial(serial string) (Node, bool) {
	return inv.find(func(n testNode) bool { return n.Serial != "" && strings.EqualFold(n.Serial, serial) })
}

func (inv testInventory) NodeByMAC(mac net.HardwareAddr) (Node, bool) {
	return inv.find(func(n testNode) bool { return len(n.MAC) > 0 && n.MAC.String() == mac.String() })
}

func (inv testInventory) NodeByAddr(a netip.Addr) (Node, bool) {
	return inv.find(func(n testNode) bool { return n.Address.IsValid() && n.Address == a })
}
