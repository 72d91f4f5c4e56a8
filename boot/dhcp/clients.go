package dhcp

import (
	"context"
	"net"
	"net/netip"
)

// bound returns a copy of the bound lease of a, if any, from the server's
// lease table (the leases it handed out, loaded from the LeaseStore when it
// started serving). It reads memory only.
func (s *Server) bound(a netip.Addr) (mac, node string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.table.byAddr[a.Unmap()]
	if l == nil || l.State != StateBound {
		return "", "", false
	}
	return l.MAC, l.Node, true
}

// MACForAddr answers "which machine holds this address?": the MAC of the
// bound lease of a, if any. It reads memory only, so TFTP and HTTP can ask
// it on every request.
func (s *Server) MACForAddr(_ context.Context, a netip.Addr) (net.HardwareAddr, bool) {
	key, _, ok := s.bound(a)
	if !ok {
		return nil, false
	}
	mac, err := net.ParseMAC(key)
	if err != nil {
		return nil, false
	}
	return mac, true
}

// NodeForAddr names the configured node DHCP bound a to (found by its Pi
// serial or its MAC when it asked), if any. It reads memory only.
func (s *Server) NodeForAddr(_ context.Context, a netip.Addr) (string, bool) {
	_, node, ok := s.bound(a)
	return node, ok && node != ""
}

// AddrForNode is the address of the bound lease DHCP gave the configured
// node node, if any. It reads memory only.
func (s *Server) AddrForNode(node string) (netip.Addr, bool) {
	if node == "" {
		return netip.Addr{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for a, l := range s.table.byAddr {
		if l.State == StateBound && l.Node == node {
			return a, true
		}
	}
	return netip.Addr{}, false
}
