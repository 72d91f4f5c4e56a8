package pisim

import (
	"bytes"
	"fmt"
	"time"
)

// DiscoverLatency sends one DHCPDISCOVER as p, with transaction ID xid, over
// l and returns how long the first OFFER for it took to arrive: a DHCP
// server's responsiveness as a Pi sees it. It returns an error wrapping
// os.ErrDeadlineExceeded when no offer came within timeout.
func (p *Pi) DiscoverLatency(l Link, xid uint32, timeout time.Duration) (time.Duration, error) {
	b, err := p.discover(xid, 0)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	deadline := start.Add(timeout)
	if err := l.SendDHCP(b); err != nil {
		return 0, fmt.Errorf("send discover: %w", err)
	}
	for {
		raw, err := l.RecvDHCP(deadline)
		if err != nil {
			return 0, fmt.Errorf("wait for an offer: %w", err)
		}
		m, err := parseDHCP(raw)
		if err != nil || m.Op != bootReply || m.Xid != xid || !bytes.Equal(m.CHAddr, p.MAC) {
			continue
		}
		if m.msgType() == dhcpOffer {
			return time.Since(start), nil
		}
	}
}
