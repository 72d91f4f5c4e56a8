package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
)

// AgentVendorClass is the DHCP option 60 the agent sends; racklet-boot
// answers it with its HTTP base URL in option 67 (boot/dhcp).
const AgentVendorClass = "racklet-agent"

// offerWindow is how long the agent keeps collecting offers after the first
// one, so a proxy-mode racklet-boot's URL and the router's address both
// arrive.
const offerWindow = time.Second

// pickOffers chooses, among the offers to one DISCOVER, the one whose
// address to take and racklet-boot's URL: the address from an offer with
// one (racklet-boot's own in full mode, else the first), the URL from
// option 67 of an offer echoing option 60 racklet-agent.
func pickOffers(offers []*dhcpv4.DHCPv4) (lease *dhcpv4.DHCPv4, server string, err error) {
	for _, o := range offers {
		fromRacklet := string(o.Options.Get(dhcpv4.OptionClassIdentifier)) == AgentVendorClass
		if fromRacklet && server == "" {
			if u := o.Options.Get(dhcpv4.OptionBootfileName); len(u) > 0 {
				if p, perr := url.Parse(string(u)); perr == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != "" {
					server = strings.TrimSuffix(string(u), "/")
				}
			}
		}
		if hasAddress(o) && (lease == nil || fromRacklet && !isFromRacklet(lease)) {
			lease = o
		}
	}
	if lease == nil {
		return nil, server, errors.New("no DHCP offer carried an address")
	}
	return lease, server, nil
}

func hasAddress(o *dhcpv4.DHCPv4) bool {
	ip := o.YourIPAddr.To4()
	return ip != nil && !ip.IsUnspecified()
}

func isFromRacklet(o *dhcpv4.DHCPv4) bool {
	return string(o.Options.Get(dhcpv4.OptionClassIdentifier)) == AgentVendorClass
}

// dhcpResult is a lease and racklet-boot's URL.
type dhcpResult struct {
	ACK    *dhcpv4.DHCPv4
	Server string
}

// dhcpLease runs DISCOVER (collecting offers for offerWindow after the
// first), REQUEST and ACK on iface, with bounded retries. opt97, when set,
// is sent as option 97 (PiOption97).
func dhcpLease(ctx context.Context, iface string, opt97 []byte, timeout time.Duration) (dhcpResult, error) {
	c, err := nclient4.New(iface, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(1))
	if err != nil {
		return dhcpResult{}, fmt.Errorf("open a DHCP client on %s: %w", iface, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	mods := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(AgentVendorClass)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionBootfileName, dhcpv4.OptionClassIdentifier, dhcpv4.OptionRouter, dhcpv4.OptionSubnetMask),
	}
	if opt97 != nil {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, opt97)))
	}
	for {
		offers, err := collectOffers(ctx, c, mods)
		if err == nil {
			lease, server, perr := pickOffers(offers)
			if perr == nil {
				l, rerr := c.RequestFromOffer(ctx, lease, mods...)
				if rerr == nil {
					return dhcpResult{ACK: l.ACK, Server: server}, nil
				}
				err = rerr
			} else {
				err = perr
			}
		}
		if ctx.Err() != nil {
			return dhcpResult{}, fmt.Errorf("no DHCP lease on %s within %s: %w", iface, timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// collectOffers sends one DISCOVER and gathers offers until offerWindow
// after the first, or until one offer brings both an address and the URL.
func collectOffers(ctx context.Context, c *nclient4.Client, mods []dhcpv4.Modifier) ([]*dhcpv4.DHCPv4, error) {
	disc, err := dhcpv4.NewDiscovery(c.InterfaceAddr(), mods...)
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu     sync.Mutex
		offers []*dhcpv4.DHCPv4
		timer  *time.Timer
	)
	match := func(m *dhcpv4.DHCPv4) bool {
		if m.MessageType() != dhcpv4.MessageTypeOffer {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		offers = append(offers, m)
		if lease, server, err := pickOffers(offers); err == nil && server != "" && isFromRacklet(lease) {
			stop() // full mode: racklet-boot's own offer has both
		} else if timer == nil {
			timer = time.AfterFunc(offerWindow, stop)
		}
		return false
	}
	_, err = c.SendAndRead(wctx, nclient4.DefaultServers, disc, match)
	mu.Lock()
	defer mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if len(offers) > 0 {
		return offers, nil
	}
	if err == nil || errors.Is(err, context.Canceled) {
		err = nclient4.ErrNoResponse
	}
	return nil, err
}

// leaseAddr is the address and prefix of an ACK.
func leaseAddr(ack *dhcpv4.DHCPv4) (*net.IPNet, net.IP) {
	mask := ack.SubnetMask()
	if mask == nil {
		mask = net.IPv4Mask(255, 255, 255, 0)
	}
	var gw net.IP
	if r := ack.Router(); len(r) > 0 {
		gw = r[0]
	}
	return &net.IPNet{IP: ack.YourIPAddr.To4(), Mask: mask}, gw
}
