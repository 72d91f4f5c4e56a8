package rack

import (
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"weak"
)

// index maps lookup keys to positions in Config.Nodes.
type index struct {
	byName, byMAC, bySerial map[string]int
}

// indexes holds each parsed Config's index, keyed weakly so that a replaced
// config (after a reload) is collected together with its index.
// (Config has no room for an unexported field; see rack/types.go.)
var indexes sync.Map // weak.Pointer[Config] -> *index

// buildIndex builds the lookup maps of a validated config, once.
func (c *Config) buildIndex() {
	ix := &index{
		byName:   make(map[string]int, len(c.Nodes)),
		byMAC:    make(map[string]int, len(c.Nodes)),
		bySerial: make(map[string]int, len(c.Nodes)),
	}
	for i, n := range c.Nodes {
		ix.byName[n.Name] = i
		if n.MAC != nil {
			ix.byMAC[n.MAC.String()] = i
		}
		if n.Serial != "" {
			ix.bySerial[n.Serial] = i
		}
	}
	wp := weak.Make(c)
	indexes.Store(wp, ix)
	runtime.AddCleanup(c, func(wp weak.Pointer[Config]) { indexes.Delete(wp) }, wp)
}

// lookup finds a node through the index when the config has one (it was
// returned by Parse), else by scanning (a config built in code).
func (c *Config) lookup(key string, pick func(*index) map[string]int, match func(*Node) bool) (*Node, bool) {
	if c == nil {
		return nil, false
	}
	if v, ok := indexes.Load(weak.Make(c)); ok {
		i, ok := pick(v.(*index))[key]
		if !ok {
			return nil, false
		}
		if i < len(c.Nodes) && match(&c.Nodes[i]) {
			return &c.Nodes[i], true
		}
		// Nodes were changed after Parse: fall back to scanning.
	}
	for i := range c.Nodes {
		if match(&c.Nodes[i]) {
			return &c.Nodes[i], true
		}
	}
	return nil, false
}

// NodeByName returns the node with the given name.
func (c *Config) NodeByName(name string) (*Node, bool) {
	return c.lookup(name, func(ix *index) map[string]int { return ix.byName },
		func(n *Node) bool { return n.Name == name })
}

// NodeByMAC returns the node with the given MAC address.
func (c *Config) NodeByMAC(mac net.HardwareAddr) (*Node, bool) {
	if len(mac) == 0 {
		return nil, false
	}
	key := mac.String()
	return c.lookup(key, func(ix *index) map[string]int { return ix.byMAC },
		func(n *Node) bool { return n.MAC.String() == key })
}

// NodeBySerial returns the Pi node with the given serial (8 hex digits, any case).
func (c *Config) NodeBySerial(serial string) (*Node, bool) {
	if serial == "" {
		return nil, false
	}
	key := strings.ToLower(serial)
	return c.lookup(key, func(ix *index) map[string]int { return ix.bySerial },
		func(n *Node) bool { return n.Serial == key })
}

// lastAddr returns the highest address of a prefix (its broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
