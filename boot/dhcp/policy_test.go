package dhcp

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
)

func TestUpdateKeepsBoundLeases(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	a := h.dora(t, "02:00:00:00:00:01")
	st := fullSettings(t)
	st.Pool = &Pool{Start: ip4("127.0.0.200"), End: ip4("127.0.0.210")}
	h.srv.Update(st)
	m := msg(t, dhcpv4.MessageTypeRequest, "02:00:00:00:00:01")
	m.ClientIPAddr = ip(a)
	h.expect(t, m, dhcpv4.MessageTypeAck)
	if b := h.dora(t, "02:00:00:00:00:02"); b != "127.0.0.200" {
		t.Errorf("new client got %s, want the new pool's 127.0.0.200", b)
	}
}

func TestUnknownPolicies(t *testing.T) {
	tests := map[string]struct {
		mode      Mode
		policy    UnknownPolicy
		wantReply bool
		wantBoot  bool
		wantNode  bool
	}{
		"full ignore":    {ModeFull, UnknownIgnore, false, false, false},
		"full discover":  {ModeFull, UnknownDiscover, true, false, true},
		"full default":   {ModeFull, UnknownDefault, true, true, true},
		"proxy ignore":   {ModeProxy, UnknownIgnore, false, false, false},
		"proxy discover": {ModeProxy, UnknownDiscover, false, false, true},
		"proxy default":  {ModeProxy, UnknownDefault, true, true, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			st := fullSettings(t)
			st.Mode, st.Unknown = tc.mode, tc.policy
			h := startHarness(t, st, nil)
			m := msg(t, dhcpv4.MessageTypeDiscover, "52:54:00:00:00:99", dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003000"), arch(7))
			r, err := h.cl.Exchange(m, quiet)
			if (err == nil) != tc.wantReply {
				t.Fatalf("reply %v (err %v), want reply %v", r, err, tc.wantReply)
			}
			if r != nil && (r.BootFileName != "") != tc.wantBoot {
				t.Errorf("boot file %q, want boot %v", r.BootFileName, tc.wantBoot)
			}
			var node bool
			for range 50 {
				if _, node, _ = h.store.Memory.Node(context.Background(), "mac:52:54:00:00:00:99"); node {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if node != tc.wantNode {
				t.Errorf("node recorded %v, want %v", node, tc.wantNode)
			}
		})
	}
}

func TestEventsAndNodes(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	pi := []dhcpv4.Option{dhcpv4.OptClassIdentifier(piVC), arch(0), opt97(mustHex(t, "00525069341131a000322ef8ed1045155b"))}
	h.dora(t, "dc:a6:32:2e:f8:ed", pi...)
	want := []string{"dhcp.discover", "dhcp.offer", "dhcp.request", "dhcp.ack"}
	var got []string
	for range 100 {
		got = got[:0]
		for _, e := range h.store.events("pi-01") {
			if e.Node == "pi-01" {
				got = append(got, e.Type)
			}
		}
		if len(got) >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pi-01 events (-want +got):\n%s", diff)
	}
	var node struct {
		Kind, Serial, Addr string
		Known              bool
	}
	for range 100 {
		n := h.store.node("pi-01")
		node.Kind, node.Serial, node.Addr, node.Known = n.Kind, n.Serial, n.Addr, n.Known
		if node.Addr != "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantNode := struct {
		Kind, Serial, Addr string
		Known              bool
	}{"rpi4", "5b154510", "127.0.0.50", true}
	if diff := cmp.Diff(wantNode, node); diff != "" {
		t.Errorf("pi-01 node record (-want +got):\n%s", diff)
	}
}
