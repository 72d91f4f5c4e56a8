package rack

import (
	"net"
	"net/netip"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// scalar returns the text of a scalar node, reporting any other kind.
// ok is false for a non-scalar; an empty value ("key:") gives "", true.
func (d *decoder) scalar(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errs.at(n, path, "must be a single value, not %s", kindName(n))
		return "", false
	}
	if isNull(n) {
		return "", true
	}
	return n.Value, true
}

// str decodes any scalar as its literal text: "serial: 00000001" stays
// "00000001" rather than becoming the number 1.
func (d *decoder) str(p *string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if s, ok := d.scalar(n, path); ok {
			*p = s
		}
	}
}

// strAs is str for named string types (enums), checked later by validation.
func (d *decoder) strAs(p *string) func(*yaml.Node, string) { return d.str(p) }

// parseIPv4 parses an IPv4 address in dotted-quad form.
func parseIPv4(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

func (d *decoder) addr(p *netip.Addr) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := d.scalar(n, path)
		if !ok || s == "" {
			return
		}
		a, ok := parseIPv4(s)
		if !ok {
			d.errs.at(n, path, "%q is not an IPv4 address (like 10.0.0.2)", s)
			return
		}
		*p = a
	}
}

func (d *decoder) addrList(p *[]netip.Addr) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		d.sequence(n, path, func(n *yaml.Node, path string) {
			var a netip.Addr
			if d.addr(&a)(n, path); a.IsValid() {
				*p = append(*p, a)
			}
		})
	}
}

func (d *decoder) strList(p *[]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			*p = append(*p, n.Value) // a single name is a list of one
			return
		}
		d.sequence(n, path, func(n *yaml.Node, path string) {
			if s, ok := d.scalar(n, path); ok {
				*p = append(*p, s)
			}
		})
	}
}

func (d *decoder) prefix(p *netip.Prefix) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := d.scalar(n, path)
		if !ok || s == "" {
			return
		}
		pf, err := netip.ParsePrefix(s)
		if err != nil || !pf.Addr().Is4() {
			d.errs.at(n, path, "%q is not an IPv4 prefix (like 10.0.0.0/24)", s)
			return
		}
		*p = pf.Masked()
	}
}

func (d *decoder) mac(p *net.HardwareAddr) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := d.scalar(n, path)
		if !ok || s == "" {
			return
		}
		m, err := net.ParseMAC(s)
		if err != nil || len(m) != 6 {
			d.errs.at(n, path, "%q is not an Ethernet MAC address (like dc:a6:32:00:00:01)", s)
			return
		}
		*p = m
	}
}

func (d *decoder) duration(p *time.Duration) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := d.scalar(n, path)
		if !ok || s == "" {
			return
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			d.errs.at(n, path, "%q is not a duration (write it with a unit, like 1h or 30m)", s)
			return
		}
		*p = v
	}
}

func (d *decoder) port(p *int) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := d.scalar(n, path)
		if !ok || s == "" {
			return
		}
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 65535 {
			d.errs.at(n, path, "%q is not a port number (1-65535)", s)
			return
		}
		*p = v
	}
}

// parseBool decodes a YAML 1.2 boolean, reporting anything else.
func (d *decoder) parseBool(n *yaml.Node, path string) (bool, bool) {
	s, ok := d.scalar(n, path)
	if !ok || s == "" {
		return false, false
	}
	v, err := strconv.ParseBool(s)
	if err != nil || n.Tag != "!!bool" {
		d.errs.at(n, path, "%q is not true or false", s)
		return false, false
	}
	return v, true
}

func (d *decoder) boolean(p *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if v, ok := d.parseBool(n, path); ok {
			*p = v
		}
	}
}

// optBool decodes into a *bool that stays nil when the value is absent or wrong.
func (d *decoder) optBool(p **bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if v, ok := d.parseBool(n, path); ok {
			*p = &v
		}
	}
}
