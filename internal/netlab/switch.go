package netlab

import (
	"context"
	"fmt"
	"net/netip"
)

// Switch is an Ethernet segment: a bridge in a namespace of its own, to which
// hosts (namespaces) attach with veth pairs and QEMU guests with taps.
type Switch struct {
	NS     Namespace
	Bridge string
}

// NewSwitch creates the switch namespace and its bridge.
func NewSwitch(ctx context.Context, name string) (*Switch, error) {
	ns, err := AddNamespace(ctx, name)
	if err != nil {
		return nil, err
	}
	sw := &Switch{NS: ns, Bridge: "br0"}
	// STP off (the default) puts ports straight into forwarding.
	if err := ns.Run(ctx, "ip", "link", "add", sw.Bridge, "type", "bridge"); err != nil {
		ns.Delete()
		return nil, fmt.Errorf("create bridge: %w", err)
	}
	if err := ns.Run(ctx, "ip", "link", "set", sw.Bridge, "up"); err != nil {
		ns.Delete()
		return nil, err
	}
	return sw, nil
}

// Attach connects a host namespace to the switch with a veth pair; the host's
// end is named ifname and gets addr (when valid).
func (s *Switch) Attach(ctx context.Context, host Namespace, ifname string, addr netip.Prefix) error {
	port := "p" + Suffix(8)
	if err := Veth(ctx, Link{NS: host, Name: ifname, Addr: addr}, Link{NS: s.NS, Name: port}); err != nil {
		return err
	}
	if err := s.NS.Run(ctx, "ip", "link", "set", port, "master", s.Bridge); err != nil {
		return fmt.Errorf("attach %s to the switch: %w", host, err)
	}
	return nil
}

// AddTap creates a tap device on the switch for a QEMU guest started inside
// the switch namespace (`-nic tap,ifname=NAME,script=no,downscript=no`).
func (s *Switch) AddTap(ctx context.Context, name string) error {
	if err := s.NS.Run(ctx, "ip", "tuntap", "add", "dev", name, "mode", "tap"); err != nil {
		return fmt.Errorf("create tap: %w", err)
	}
	if err := s.NS.Run(ctx, "ip", "link", "set", name, "master", s.Bridge); err != nil {
		return err
	}
	return s.NS.Run(ctx, "ip", "link", "set", name, "up")
}

// Close removes the switch namespace (its bridge and ports go with it).
func (s *Switch) Close() { s.NS.Delete() }
