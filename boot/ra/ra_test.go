package ra

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv6"

	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/internal/testutil"
)

func TestAdvertisement(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	b := Advertisement(mac)
	want := []byte{
		134, 0, 0, 0, // type, code, checksum (the kernel's)
		0, 0, 0, 0, // hop limit unspecified; M, O clear; router lifetime 0
		0, 0, 0, 0, 0, 0, 0, 0, // reachable time, retransmit timer: unspecified
		1, 1, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // source link-layer address
	}
	if string(b) != string(want) {
		t.Errorf("advertisement\n got % x\nwant % x", b, want)
	}
	if b := Advertisement(nil); len(b) != 16 {
		t.Errorf("without a MAC: %d bytes, want 16 (no options)", len(b))
	}
}

func TestIsSolicitation(t *testing.T) {
	rs := []byte{133, 0, 0, 0, 0, 0, 0, 0}
	slla := []byte{1, 1, 0x52, 0x54, 0, 1, 2, 3}
	tests := map[string]struct {
		b    []byte
		want bool
	}{
		"bare":                   {rs, true},
		"with source link-layer": {append(append([]byte{}, rs...), slla...), true},
		"short":                  {rs[:7], false},
		"advertisement":          {append([]byte{134}, rs[1:]...), false},
		"code 1":                 {append([]byte{133, 1}, rs[2:]...), false},
		"option of length 0":     {append(append([]byte{}, rs...), 1, 0, 0, 0, 0, 0, 0, 0), false},
		"option past the end":    {append(append([]byte{}, rs...), 1, 2, 0, 0, 0, 0, 0, 0), false},
		"option cut short":       {append(append([]byte{}, rs...), 1), false},
	}
	for name, tc := range tests {
		if got := IsSolicitation(tc.b); got != tc.want {
			t.Errorf("%s: IsSolicitation = %v, want %v", name, got, tc.want)
		}
	}
}

func FuzzIsSolicitation(f *testing.F) {
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0x52, 0x54, 0, 1, 2, 3})
	f.Add([]byte{133, 0, 0, 0, 0, 0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if IsSolicitation(b) && (len(b) < 8 || b[0] != byte(ipv6.ICMPTypeRouterSolicitation) || (len(b)-8)%8 != 0) {
			t.Fatalf("accepted % x", b)
		}
	})
}

// TestRdisc6 asks for a router from another namespace with rdisc6 (a real
// IPv6 host tool) and checks the answer configures nothing.
func TestRdisc6(t *testing.T) {
	testutil.NeedRoot(t, "network namespaces")
	rdisc6 := testutil.NeedTool(t, "rdisc6")
	testutil.NeedTool(t, "ip")
	ctx := t.Context()
	srv, err := netlab.AddNamespace(ctx, "rkra-s-"+netlab.Suffix(6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Delete)
	cli, err := netlab.AddNamespace(ctx, "rkra-c-"+netlab.Suffix(6))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.Delete)
	if err := netlab.Veth(ctx, netlab.Link{NS: srv, Name: "eth0"}, netlab.Link{NS: cli, Name: "eth0"}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []netlab.Namespace{srv, cli} {
		waitLinkLocal(t, ns)
	}

	// Without a responder nobody answers.
	if out, err := cli.Output(ctx, rdisc6, "-1", "-r", "1", "-w", "500", "eth0"); err == nil {
		t.Fatalf("rdisc6 got an answer with no responder running:\n%s", out)
	}

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Do(func() error { return (&Responder{Interface: "eth0"}).ListenAndServe(rctx) }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("responder: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("responder did not stop within 5 s")
		}
	})
	var out string
	for try := 0; try < 10; try++ { // the responder may not be listening yet
		if out, err = cli.Output(ctx, rdisc6, "-1", "-r", "1", "-w", "1000", "eth0"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("rdisc6: %v\n%s", err, out)
	}
	t.Logf("rdisc6:\n%s", out)
	for _, want := range []string{
		"Stateful address conf.    :           No",
		"Stateful other conf.      :           No",
		"Router lifetime           :            0 (0x00000000) seconds",
		"from fe80::",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rdisc6 output lacks %q", want)
		}
	}
	if strings.Contains(out, "Prefix") {
		t.Error("the advertisement carries a prefix")
	}
}

// waitLinkLocal waits until eth0 in ns has a link-local address past
// duplicate address detection (a tentative one cannot send).
func waitLinkLocal(t *testing.T, ns netlab.Namespace) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := ns.Output(t.Context(), "ip", "-6", "addr", "show", "dev", "eth0", "scope", "link")
		if err == nil && strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usable link-local address on eth0 in %s after 10 s:\n%s", ns, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
