package dhcp

import (
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// recallWindow is how long a DISCOVER's classification vouches for the
// client's later messages.
const recallWindow = 5 * time.Minute

// maxRecall bounds the classification cache (a flood of random MACs).
const maxRecall = 8192

// recall remembers how boot clients classified in their DISCOVER: the Pi's
// REQUEST carries no option 60 (and a custom-FourCC Pi is recognised only
// by it), so later messages inherit what the DISCOVER said.
type recall struct {
	mu   sync.Mutex
	seen map[string]recalled
}

type recalled struct {
	c  Client
	at time.Time
}

// apply records c when it is a DISCOVER from a boot client, and fills in a
// later message's classification from the DISCOVER.
func (r *recall) apply(mt dhcpv4.MessageType, c Client, now time.Time) Client {
	key := c.MAC.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if mt == dhcpv4.MessageTypeDiscover {
		if c.IsBootClient() {
			if r.seen == nil || len(r.seen) >= maxRecall {
				r.seen = map[string]recalled{}
			}
			r.seen[key] = recalled{c: c, at: now}
		}
		return c
	}
	prev, ok := r.seen[key]
	if !ok || now.Sub(prev.at) > recallWindow || c.IsBootClient() && !(prev.c.Pi && !c.Pi) {
		return c
	}
	merged := prev.c
	merged.Hostname = c.Hostname
	if c.Arch != -1 {
		merged.Arch = c.Arch
	}
	return merged
}
