package dhcp

import (
	"context"
	"net"
	"net/netip"
)

// MACForAddr answers "which machine holds this address?" from the server's
// lease table (the leases it handed out, loaded from the LeaseStore when it
// started serving): the MAC of the bound lease of a, if any. It reads
// memory only, so TFTP and HTTP can ask it on every request.
func (s *Server) MACForAddr(_ context.Context, a netip.Addr) (net.HardwareAddr, bool) {
	s.mu.Lock()
	l := s.table.byAddr[a.Unmap()]
	var key string
	if l != nil && l.State == StateBound {
		key = l.MAC
	}
	s.mu.Unlock()
	if key == "" {
		return nil, false
	}
	mac, err := net.ParseMAC(key)
	if err != nil {
		return nil, false
	}
	return mac, true
}
