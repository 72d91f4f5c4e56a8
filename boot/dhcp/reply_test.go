package dhcp

import (
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

// bootReply is the comparable boot part of a reply.
type bootReply struct {
	Type   string
	YIAddr string
	SIAddr string
	File   string
	Opt43  string // hex
	Opt54  string
	Opt60  string
	Opt66  string
	Opt67  string
	Opt97  string // hex
	Lease  bool   // option 51 present
}

func summarize(r *dhcpv4.DHCPv4) bootReply {
	return bootReply{
		Type:   r.MessageType().String(),
		YIAddr: r.YourIPAddr.String(),
		SIAddr: r.ServerIPAddr.String(),
		File:   r.BootFileName,
		Opt43:  hex.EncodeToString(r.Options.Get(dhcpv4.OptionVendorSpecificInformation)),
		Opt54:  net.IP(r.Options.Get(dhcpv4.OptionServerIdentifier)).String(),
		Opt60:  string(r.Options.Get(dhcpv4.OptionClassIdentifier)),
		Opt66:  string(r.Options.Get(dhcpv4.OptionTFTPServerName)),
		Opt67:  string(r.Options.Get(dhcpv4.OptionBootfileName)),
		Opt97:  hex.EncodeToString(r.Options.Get(dhcpv4.OptionClientMachineIdentifier)),
		Lease:  r.Options.Has(dhcpv4.OptionIPAddressLeaseTime),
	}
}

func proxySettings(t testing.TB) Settings {
	inv := testInventory{
		{Name: "pi-01", Serial: "5b154510"},
		{Name: "pc-01", MAC: mustMAC(t, "52:54:00:99:00:a1"), EFI: "grubx64.efi"},
		{Name: "pc-02", MAC: mustMAC(t, "52:54:00:99:00:a2")},
		{Name: "arm-01", MAC: mustMAC(t, "52:54:00:99:00:a3")},
	}
	return Settings{
		Mode:       ModeProxy,
		ServerAddr: netip.MustParseAddr("10.0.0.2"),
		HTTPPort:   8080,
		Unknown:    UnknownIgnore,
		Inventory:  inv,
	}
}

func TestBootReplies(t *testing.T) {
	real4 := "00525069341131a000322ef8ed1045155b"
	pi43 := "0601030a04005058450914000011" + hex.EncodeToString([]byte("Raspberry Pi Boot")) + "ff"
	tests := map[string]struct {
		req  *dhcpv4.DHCPv4
		want *bootReply // nil: no reply
	}{
		"pi4 proxy offer": {
			req: discoverWith(t, "dc:a6:32:2e:f8:ed", dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, real4))),
			want: &bootReply{Type: "OFFER", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", Opt43: pi43, Opt54: "10.0.0.2",
				Opt60: "PXEClient", Opt66: "10.0.0.2", Opt97: real4},
		},
		"uefi pxe gets the node's EFI name": {
			req: discoverWith(t, "52:54:00:99:00:a1", dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"), arch(7)),
			want: &bootReply{Type: "OFFER", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", File: "grubx64.efi", Opt54: "10.0.0.2",
				Opt60: "PXEClient", Opt66: "10.0.0.2", Opt67: "grubx64.efi"},
		},
		"uefi arm64 pxe default EFI": {
			req: discoverWith(t, "52:54:00:99:00:a3", dhcpv4.OptClassIdentifier("PXEClient:Arch:00011:UNDI:003000"), arch(11)),
			want: &bootReply{Type: "OFFER", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", File: "bootaa64.efi", Opt54: "10.0.0.2",
				Opt60: "PXEClient", Opt66: "10.0.0.2", Opt67: "bootaa64.efi"},
		},
		"bios pxe gets undionly": {
			req: discoverWith(t, "52:54:00:99:00:a2", dhcpv4.OptClassIdentifier(piVC), arch(0)),
			want: &bootReply{Type: "OFFER", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", File: "undionly.kpxe", Opt54: "10.0.0.2",
				Opt60: "PXEClient", Opt66: "10.0.0.2", Opt67: "undionly.kpxe"},
		},
		"ipxe gets the script URL": {
			req: discoverWith(t, "52:54:00:99:00:a2", dhcpv4.OptClassIdentifier(piVC), arch(0), dhcpv4.OptUserClass("iPXE")),
			want: &bootReply{Type: "OFFER", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", File: "http://10.0.0.2:8080/ipxe/52-54-00-99-00-a2/boot.ipxe",
				Opt54: "10.0.0.2", Opt60: "PXEClient", Opt66: "10.0.0.2", Opt67: "http://10.0.0.2:8080/ipxe/52-54-00-99-00-a2/boot.ipxe"},
		},
		"uefi http gets HTTPClient and a URL": {
			req: discoverWith(t, "52:54:00:99:00:a1", dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003000"), arch(16)),
			want: &bootReply{Type: "OFFER", YIAddr: "0.0.0.0", SIAddr: "0.0.0.0", File: "http://10.0.0.2:8080/boot/52-54-00-99-00-a1/grubx64.efi",
				Opt54: "10.0.0.2", Opt60: "HTTPClient", Opt67: "http://10.0.0.2:8080/boot/52-54-00-99-00-a1/grubx64.efi"},
		},
		"u-boot gets file and siaddr": {
			req: discoverWith(t, "52:54:00:99:00:a3", dhcpv4.OptClassIdentifier("U-Boot.armv8"), arch(22)),
			want: &bootReply{Type: "OFFER", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", File: "bootaa64.efi", Opt54: "10.0.0.2",
				Opt66: "10.0.0.2", Opt67: "bootaa64.efi"},
		},
		"unknown machine ignored":       {req: discoverWith(t, "52:54:00:00:00:99", dhcpv4.OptClassIdentifier(piVC), arch(0))},
		"known non-boot client ignored": {req: discoverWith(t, "52:54:00:99:00:a1", dhcpv4.OptClassIdentifier("udhcp 1.36.1"))},
		"proxy ignores a request for the router": {req: func() *dhcpv4.DHCPv4 {
			m := discoverWith(t, "dc:a6:32:2e:f8:ed", arch(0), opt97(mustHex(t, real4)),
				dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1)), dhcpv4.OptRequestedIPAddress(net.IPv4(10, 0, 0, 50)))
			m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
			return m
		}()},
		"proxy acks a request naming it (pi REQUEST has no option 60)": {req: func() *dhcpv4.DHCPv4 {
			m := discoverWith(t, "dc:a6:32:2e:f8:ed", arch(0), opt97(mustHex(t, real4)), dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 2)))
			m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
			return m
		}(),
			want: &bootReply{Type: "ACK", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", Opt43: pi43, Opt54: "10.0.0.2",
				Opt60: "PXEClient", Opt66: "10.0.0.2", Opt97: real4},
		},
	}
	srv := New(proxySettings(t), Options{})
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			out, _ := srv.handle(context.Background(), tc.req.ToBytes(), &net.UDPAddr{IP: net.IPv4zero, Port: 68}, false)
			if tc.want == nil {
				if out != nil {
					t.Fatalf("got a reply, want none")
				}
				return
			}
			if out == nil {
				t.Fatal("no reply")
			}
			r, err := dhcpv4.FromBytes(out)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*tc.want, summarize(r)); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProxyPort4011UnicastsAck(t *testing.T) {
	srv := New(proxySettings(t), Options{})
	req := discoverWith(t, "52:54:00:99:00:a1", dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"), arch(7))
	req.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeRequest))
	peer := &net.UDPAddr{IP: net.IPv4(10, 0, 0, 77), Port: 4011}
	out, dst := srv.handle(context.Background(), req.ToBytes(), peer, true)
	if out == nil {
		t.Fatal("no reply on port 4011")
	}
	r, _ := dhcpv4.FromBytes(out)
	want := bootReply{Type: "ACK", YIAddr: "0.0.0.0", SIAddr: "10.0.0.2", File: "grubx64.efi", Opt54: "10.0.0.2",
		Opt60: "PXEClient", Opt66: "10.0.0.2", Opt67: "grubx64.efi"}
	if diff := cmp.Diff(want, summarize(r)); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if dst.String() != peer.String() {
		t.Errorf("reply sent to %v, want the client %v", dst, peer)
	}
}
