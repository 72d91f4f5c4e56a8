package resolve

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/racklet/racklet-boot/rack"
)

// How a request was matched to a node, for logs.
const (
	bySerialPrefix = "serial-prefix"
	byMACPrefix    = "mac-prefix"
	byAddress      = "address"
	byDefault      = "default"
)

// client is the outcome of identifying who asks for a name.
type client struct {
	node  *rack.Node // a config node, or a synthetic one (Name "") for unknown machines
	known bool       // node is named in the config
	how   string     // bySerialPrefix, byMACPrefix, byAddress or byDefault
	name  string     // the cleaned name with any node prefix removed
	// mayStrip allows Pi prefix mode 1: when the first element of name is
	// neither a file nor a directory in the source, the rest is tried.
	mayStrip bool
}

// NodeFor reports which node a request comes from, for logs and events. A
// node with an empty Name is an unknown machine served under the "default"
// policy. Refused names and clients give an error wrapping ErrRefused.
// The returned node is a copy.
func (r *Resolver) NodeFor(ctx context.Context, req Request) (*rack.Node, error) {
	name, err := CleanName(req.Name)
	if err != nil {
		return nil, err
	}
	c, err := r.identify(ctx, r.snap.Load(), req, name)
	if err != nil {
		return nil, err
	}
	n := *c.node
	return &n, nil
}

// identify finds the node for a cleaned name, in this order:
//
//  1. the first element is a serial (8 hex digits, TFTP_PREFIX=0) or a
//     dashed MAC (TFTP_PREFIX=2) of a configured node: that node, and the
//     rest of the name is the file;
//  2. the client's address maps (through Clients) to the MAC of a
//     configured node: that node, the whole name, and Pi prefix mode 1
//     (TFTP_PREFIX=1, a fixed string such as "rack1/") allowed;
//  3. otherwise the UnknownMachines policy: "default" serves Config.Default
//     to a synthetic node; "ignore", "discover" (and unset) refuse.
func (r *Resolver) identify(ctx context.Context, s *snapshot, req Request, name string) (*client, error) {
	first, rest := splitFirst(name)
	var prefSerial string
	var prefMAC net.HardwareAddr
	if rest != "" {
		if isSerial(first) {
			prefSerial = strings.ToLower(first)
			if n, ok := s.inv.BySerial(prefSerial); ok {
				return &client{node: n, known: true, how: bySerialPrefix, name: rest}, nil
			}
		} else if mac, ok := parseDashedMAC(first); ok {
			prefMAC = mac
			if n, ok := s.inv.ByMAC(mac); ok {
				return &client{node: n, known: true, how: byMACPrefix, name: rest}, nil
			}
		}
	}
	var addrMAC net.HardwareAddr
	if r.Clients != nil && req.Client.IsValid() {
		if mac, ok := r.Clients.MACForAddr(ctx, req.Client.Unmap()); ok {
			addrMAC = mac
			if n, ok := s.inv.ByMAC(mac); ok {
				return &client{node: n, known: true, how: byAddress, name: name, mayStrip: true}, nil
			}
		}
	}
	who := describeUnknown(req, addrMAC, prefSerial, prefMAC)
	switch s.cfg.UnknownMachines {
	case rack.UnknownDefault:
		if s.cfg.Default == nil {
			return nil, fmt.Errorf("%w: %s: unknownMachines is %q but the config has no default boot source",
				ErrRefused, who, rack.UnknownDefault)
		}
	case "":
		return nil, fmt.Errorf("%w: %s is not in the config and unknownMachines is unset (ignore)", ErrRefused, who)
	default:
		return nil, fmt.Errorf("%w: %s is not in the config and unknownMachines is %q", ErrRefused, who, s.cfg.UnknownMachines)
	}
	n := &rack.Node{Serial: prefSerial, MAC: prefMAC, Boot: *s.cfg.Default}
	if addrMAC != nil {
		n.MAC = addrMAC
	}
	// An unknown Pi's serial or MAC prefix is stripped when the default
	// source has no such directory, like a known Pi's mode-1 prefix.
	return &client{node: n, how: byDefault, name: name, mayStrip: prefSerial != "" || prefMAC != nil}, nil
}

// describeUnknown names an unknown client for an error message.
func describeUnknown(req Request, addrMAC net.HardwareAddr, serial string, prefMAC net.HardwareAddr) string {
	var b strings.Builder
	b.WriteString("client")
	if req.Client.IsValid() {
		fmt.Fprintf(&b, " %s", req.Client)
	}
	if addrMAC != nil {
		fmt.Fprintf(&b, " (MAC %s)", addrMAC)
	}
	if serial != "" {
		fmt.Fprintf(&b, " asking with serial prefix %s", serial)
	}
	if prefMAC != nil {
		fmt.Fprintf(&b, " asking with MAC prefix %s", prefMAC)
	}
	return b.String()
}

// isSerial reports whether s is a Pi serial as the bootloader writes it in
// TFTP_PREFIX=0 names: 8 hex digits.
func isSerial(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// parseDashedMAC parses a 6-byte MAC with dashes ("dc-a6-32-01-36-c2"), the
// form of TFTP_PREFIX=2 names and of boot.ipxe URLs.
func parseDashedMAC(s string) (net.HardwareAddr, bool) {
	if len(s) != 17 {
		return nil, false
	}
	mac := make(net.HardwareAddr, 6)
	for i := range mac {
		o := i * 3
		if i > 0 && s[o-1] != '-' {
			return nil, false
		}
		if !isHex(s[o]) || !isHex(s[o+1]) {
			return nil, false
		}
		mac[i] = unhex(s[o])<<4 | unhex(s[o+1])
	}
	return mac, true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
