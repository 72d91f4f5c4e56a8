package rack

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"
)

// validator checks the rules that span fields, after decoding and defaults.
type validator struct {
	d    *decoder
	c    *Config
	base string // directory relative boot sources are resolved against
	// groupBoot holds the nodes whose boot source is their group's image.
	groupBoot map[string]bool
}

// at records a problem at the position of path (or its nearest parent in the file).
func (v *validator) at(path, format string, args ...any) {
	v.d.errs.at(v.d.node(path), path, format, args...)
}

// set reports whether the file gave a (possibly invalid) value for path.
func (v *validator) set(path string) bool {
	n, ok := v.d.where[path]
	return ok && !isNull(n)
}

func (v *validator) validate() {
	c := v.c
	switch {
	case c.APIVersion == "":
		v.at("apiVersion", "required: write \"apiVersion: %s\"", APIVersion)
	case c.APIVersion != APIVersion:
		v.at("apiVersion", "%q is not supported: this racklet-boot reads %s", c.APIVersion, APIVersion)
	}
	switch {
	case c.Kind == "":
		v.at("kind", "required: write \"kind: %s\"", Kind)
	case c.Kind != Kind:
		v.at("kind", "%q is not supported: a rack config has kind %s", c.Kind, Kind)
	}
	v.server()
	v.dhcp()
	v.trust()
	v.images()
	v.kubernetes()
	switch c.UnknownMachines {
	case UnknownIgnore, UnknownDiscover:
	case UnknownDefault:
		if c.Default == nil {
			v.at("unknownMachines", "\"default\" boots unknown machines from the top-level default: boot source, which is missing")
		}
	default:
		v.at("unknownMachines", "%q is not one of ignore, default, discover", c.UnknownMachines)
	}
	switch c.Enrolment {
	case EnrolPreprovisioned, EnrolApprove, EnrolTOFU:
	default:
		v.at("enrolment", "%q is not one of preprovisioned, approve, tofu", c.Enrolment)
	}
	if c.Default != nil {
		v.boot("default", c.Default)
	}
	v.labels()
	v.groups()
	v.nodes()
}

func (v *validator) server() {
	if i := v.c.Server.Interface; len(i) > 15 || strings.ContainsAny(i, "/ \t\n") {
		v.at("server.interface", "%q is not a network interface name (at most 15 characters, no / or spaces)", i)
	}
	a := v.c.Server.Address
	switch {
	case !a.IsValid() && v.set("server.address"):
		// decoding already reported the bad value
	case !a.IsValid():
		v.at("server.address", "required: the IPv4 address clients reach racklet-boot at (TFTP and HTTP)")
	case a.IsUnspecified() || a.IsMulticast() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		v.at("server.address", "%s is not a unicast address clients can reach", a)
	}
}

func (v *validator) dhcp() {
	h := &v.c.DHCP
	switch h.Mode {
	case DHCPProxy, DHCPFull, DHCPOff:
	case "":
		v.at("dhcp.mode", "required: one of proxy (beside a router), full (racklet-boot hands out addresses), off")
	default:
		v.at("dhcp.mode", "%q is not one of proxy, full, off", h.Mode)
	}
	if h.LeaseTime < time.Minute {
		v.at("dhcp.leaseTime", "%s is too short: clients would renew constantly; use at least 1m", h.LeaseTime)
	} else if h.LeaseTime > math.MaxUint32*time.Second {
		v.at("dhcp.leaseTime", "%s does not fit in a DHCP lease time (at most 136 years)", h.LeaseTime)
	}
	if len(h.PiMenu) > 32 {
		v.at("dhcp.piMenu", "is %d bytes; the Pi bootloader reads at most 32", len(h.PiMenu))
	}
	for _, r := range h.PiMenu {
		if r < 0x20 || r > 0x7e {
			v.at("dhcp.piMenu", "must be printable ASCII (it goes into DHCP option 43), found %q", r)
			break
		}
	}
	if h.Domain != "" && !isDNSName(h.Domain) {
		v.at("dhcp.domain", "%q is not a DNS domain name", h.Domain)
	}
	if h.Mode == DHCPFull && h.Subnet.IsValid() {
		v.fullAddresses()
	}
	v.pool()
}

// fullAddresses checks, in full mode, that the server's and the router's
// addresses are hosts of the subnet racklet-boot hands out addresses on.
func (v *validator) fullAddresses() {
	sub := v.c.DHCP.Subnet
	for _, f := range []struct {
		path, what string
		a          netip.Addr
	}{
		{"server.address", "racklet-boot's own address must be on the subnet it hands out", v.c.Server.Address},
		{"dhcp.router", "clients could not reach their router", v.c.DHCP.Router},
	} {
		switch {
		case !f.a.IsValid():
		case !sub.Contains(f.a):
			v.at(f.path, "%s is outside dhcp.subnet %s: %s", f.a, sub, f.what)
		case isEdge(sub, f.a):
			v.at(f.path, "%s is the network or broadcast address of dhcp.subnet %s, not a host", f.a, sub)
		}
	}
}

// isEdge reports whether a is the network or broadcast address of sub
// (prefixes of /31 and /32 have no such addresses).
func isEdge(sub netip.Prefix, a netip.Addr) bool {
	return sub.Bits() < 31 && (a == sub.Masked().Addr() || a == lastAddr(sub))
}

func (v *validator) pool() {
	h := &v.c.DHCP
	p := h.Pool
	switch {
	case h.Mode == DHCPProxy && p != nil:
		v.at("dhcp.pool", "proxy mode never hands out addresses (the router's DHCP server does): remove pool, or set mode: full")
		return
	case h.Mode == DHCPOff && p != nil:
		v.at("dhcp.pool", "dhcp mode is off, so the pool would never be used: remove it, or set mode: full")
		return
	case h.Mode != DHCPFull:
		return
	case p == nil:
		v.at("dhcp.pool", "required in full mode: the range of addresses to hand out, as {start: ..., end: ...}")
		return
	}
	ok := true
	for _, f := range []struct {
		name string
		a    netip.Addr
	}{{"start", p.Start}, {"end", p.End}} {
		path := "dhcp.pool." + f.name
		switch {
		case !f.a.IsValid() && v.set(path):
			ok = false // decoding already reported the bad value
		case !f.a.IsValid():
			v.at(path, "required")
			ok = false
		case h.Subnet.IsValid() && !h.Subnet.Contains(f.a):
			v.at(path, "%s is outside dhcp.subnet %s", f.a, h.Subnet)
			ok = false
		case h.Subnet.IsValid() && isEdge(h.Subnet, f.a):
			v.at(path, "%s is the network or broadcast address of dhcp.subnet %s: a pool holds host addresses only", f.a, h.Subnet)
			ok = false
		}
	}
	if !ok {
		return
	}
	if p.End.Less(p.Start) {
		v.at("dhcp.pool", "start %s is after end %s", p.Start, p.End)
		return
	}
	inPool := func(a netip.Addr) bool { return a.IsValid() && !a.Less(p.Start) && !p.End.Less(a) }
	if s := v.c.Server.Address; inPool(s) {
		v.at("dhcp.pool", "contains server.address %s: it would be handed to a client", s)
	}
	if inPool(h.Router) {
		v.at("dhcp.pool", "contains dhcp.router %s: it would be handed to a client", h.Router)
	}
}

// isDNSLabel reports whether s is a lower-case DNS label (RFC 1123).
func isDNSLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}

// isDNSName reports whether s is a dot-separated name of DNS labels.
func isDNSName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !isDNSLabel(strings.ToLower(l)) {
			return false
		}
	}
	return true
}

// isHex8 reports whether s is exactly 8 hexadecimal digits.
func isHex8(s string) bool {
	if len(s) != 8 {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i] | 0x20
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return false
		}
	}
	return true
}

// firstUse remembers where a unique value was first seen.
type firstUse map[string]int // value -> node index

// claim records value for node i, reporting a duplicate against the first user.
func (v *validator) claim(seen firstUse, field, value string, i int) {
	path := fmt.Sprintf("nodes[%d].%s", i, field)
	if j, dup := seen[value]; dup {
		first := v.c.Nodes[j]
		v.at(path, "%s %s is also used by node %q (line %d); each must be unique", field, value, first.Name, first.Line)
		return
	}
	seen[value] = i
}
