package dhcp

import (
	"fmt"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// eventName is the store.Event type suffix of a message type.
func eventName(mt dhcpv4.MessageType) string {
	switch mt {
	case dhcpv4.MessageTypeDiscover:
		return "discover"
	case dhcpv4.MessageTypeOffer:
		return "offer"
	case dhcpv4.MessageTypeRequest:
		return "request"
	case dhcpv4.MessageTypeAck:
		return "ack"
	case dhcpv4.MessageTypeNak:
		return "nak"
	case dhcpv4.MessageTypeRelease:
		return "release"
	case dhcpv4.MessageTypeDecline:
		return "decline"
	case dhcpv4.MessageTypeInform:
		return "inform"
	}
	return fmt.Sprintf("type%d", uint8(mt))
}

func requestDetail(x *exchange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mac %s", x.mac)
	if k := x.c.Kind(); k != "" {
		fmt.Fprintf(&b, " kind %s", k)
	}
	if x.c.Serial != "" {
		fmt.Fprintf(&b, " serial %s", x.c.Serial)
	}
	if a := addr4(x.req.RequestedIPAddress()); a.IsValid() {
		fmt.Fprintf(&b, " requested %s", a)
	}
	if a := addr4(x.req.ClientIPAddr); a.IsValid() {
		fmt.Fprintf(&b, " ciaddr %s", a)
	}
	return b.String()
}

func detail(r *dhcpv4.DHCPv4) string {
	var parts []string
	if a := addr4(r.YourIPAddr); a.IsValid() {
		parts = append(parts, "addr "+a.String())
	}
	if r.BootFileName != "" {
		parts = append(parts, "file "+r.BootFileName)
	}
	if r.Options.Has(dhcpv4.OptionVendorSpecificInformation) {
		parts = append(parts, "pi boot")
	}
	if m := r.Options.Get(dhcpv4.OptionMessage); m != nil {
		parts = append(parts, "reason "+string(m))
	}
	return strings.Join(parts, " ")
}
