package server

import (
	"context"
	"net"
	"net/netip"

	"github.com/racklet/racklet-boot/boot/dhcp"
	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/inventory"
	"github.com/racklet/racklet-boot/rack"
)

// dhcpSettings translates the config behind inv into the DHCP server's
// settings, with inv as its inventory.
func dhcpSettings(inv *inventory.Inventory) dhcp.Settings {
	cfg := inv.Config()
	s := dhcp.Settings{
		Mode:       dhcp.Mode(cfg.DHCP.Mode),
		ServerAddr: cfg.Server.Address,
		HTTPPort:   cfg.Server.HTTPPort,
		Subnet:     cfg.DHCP.Subnet,
		Router:     cfg.DHCP.Router,
		DNS:        cfg.DHCP.DNS,
		Domain:     cfg.DHCP.Domain,
		LeaseTime:  cfg.DHCP.LeaseTime,
		PiMenu:     cfg.DHCP.PiMenu,
		Unknown:    dhcp.UnknownPolicy(cfg.UnknownMachines),
		Inventory:  dhcpInventory{inv},
	}
	if p := cfg.DHCP.Pool; p != nil {
		s.Pool = &dhcp.Pool{Start: p.Start, End: p.End}
	}
	if cfg.Default != nil {
		s.DefaultEFI = cfg.Default.EFI
	}
	return s
}

// dhcpInventory answers the DHCP server's questions from the node index.
type dhcpInventory struct{ inv *inventory.Inventory }

var _ dhcp.Inventory = dhcpInventory{}

func dhcpNode(n *rack.Node, ok bool) (dhcp.Node, bool) {
	if !ok {
		return dhcp.Node{}, false
	}
	return dhcp.Node{Name: n.Name, Address: n.Address, EFI: n.Boot.EFI}, true
}

func (d dhcpInventory) NodeBySerial(serial string) (dhcp.Node, bool) {
	return dhcpNode(d.inv.BySerial(serial))
}

func (d dhcpInventory) NodeByMAC(mac net.HardwareAddr) (dhcp.Node, bool) {
	return dhcpNode(d.inv.ByMAC(mac))
}

func (d dhcpInventory) NodeByAddr(a netip.Addr) (dhcp.Node, bool) {
	return dhcpNode(d.inv.ByAddr(a))
}

// clientLookup answers "which MAC is at this address?" for the resolver:
// from the DHCP server's lease table (its in-memory copy of the leases it
// handed out), then the neighbour table (proxy mode: the router leased the
// address, the ARP entry tells us).
type clientLookup struct {
	leases     resolve.Clients
	neighbours resolve.Clients
}

func (c *clientLookup) MACForAddr(ctx context.Context, a netip.Addr) (net.HardwareAddr, bool) {
	if mac, ok := c.leases.MACForAddr(ctx, a); ok {
		return mac, true
	}
	return c.neighbours.MACForAddr(ctx, a)
}
