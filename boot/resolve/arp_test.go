package resolve

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/internal/testutil"
)

const arpDump = `IP address       HW type     Flags       HW address            Mask     Device
10.0.0.101       0x1         0x2         dc:a6:32:01:36:c2     *        eth0
10.0.0.102       0x1         0x0         00:00:00:00:00:00     *        eth0
10.0.0.103       0x1         0x6         DC:A6:32:00:00:03     *        eth0
10.0.0.104       0x1         0x2         00:00:00:00:00:00     *        eth0
garbage line
10.0.0.105       0x1         zz          dc:a6:32:00:00:05     *        eth0
10.0.0.106       0x1         0x2         not-a-mac             *        eth0
`

func TestARPTable(t *testing.T) {
	p := filepath.Join(t.TempDir(), "arp")
	if err := os.WriteFile(p, []byte(arpDump), 0o644); err != nil {
		t.Fatal(err)
	}
	table := ARPTable{Path: p}
	tests := map[string]struct {
		addr string
		want string
	}{
		"complete":            {"10.0.0.101", "dc:a6:32:01:36:c2"},
		"incomplete":          {"10.0.0.102", ""},
		"permanent, upper":    {"10.0.0.103", "dc:a6:32:00:00:03"},
		"zero MAC":            {"10.0.0.104", ""},
		"bad flags":           {"10.0.0.105", ""},
		"bad MAC":             {"10.0.0.106", ""},
		"absent":              {"10.0.0.200", ""},
		"IPv4-mapped IPv6":    {"::ffff:10.0.0.101", "dc:a6:32:01:36:c2"},
		"IPv6 is not in ARP":  {"fe80::1", ""},
		"header is not a row": {"0.0.0.0", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mac, ok := table.MACForAddr(context.Background(), addr(tc.addr))
			got := ""
			if ok {
				got = mac.String()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("MACForAddr(%s) (-want +got):\n%s", tc.addr, diff)
			}
		})
	}
	if _, ok := (ARPTable{Path: filepath.Join(t.TempDir(), "missing")}).MACForAddr(context.Background(), addr("10.0.0.101")); ok {
		t.Error("a missing table found an address")
	}
}

func TestARPTableLive(t *testing.T) {
	if _, err := os.Stat("/proc/net/arp"); err != nil {
		testutil.Unavailable(t, fmt.Sprintf("no /proc/net/arp: %v", err))
	}
	// The loopback address is never in the neighbour table.
	if mac, ok := (ARPTable{}).MACForAddr(context.Background(), addr("127.0.0.1")); ok {
		t.Errorf("127.0.0.1 has MAC %s in /proc/net/arp", mac)
	}
}

func FuzzLookupARP(f *testing.F) {
	f.Add([]byte(arpDump), "10.0.0.101")
	f.Add([]byte("IP address HW type Flags HW address Mask Device\n1.2.3.4 0x1 0x2 01:02:03:04:05:06 * eth0\n"), "1.2.3.4")
	f.Add([]byte("\n\n0x2 0x2 0x2 0x2\n"), "0.0.0.0")
	f.Fuzz(func(t *testing.T, table []byte, a string) {
		ip, err := netipParse(a)
		if err != nil {
			return
		}
		mac, ok := lookupARP(table, ip)
		if !ok {
			return
		}
		if len(mac) != 6 || isZeroMAC(mac) {
			t.Fatalf("lookupARP found %v", mac)
		}
		// The answer must come from a row (not the header) for that address.
		for i, line := range strings.Split(string(table), "\n") {
			fields := strings.Fields(line)
			if i == 0 || len(fields) < 4 {
				continue
			}
			rowIP, err1 := netipParse(fields[0])
			rowMAC, err2 := net.ParseMAC(fields[3])
			if err1 == nil && err2 == nil && rowIP == ip && rowMAC.String() == mac.String() {
				return
			}
		}
		t.Fatalf("lookupARP found %v for %s, which no row holds", mac, ip)
	})
}

func FuzzParseDashedMAC(f *testing.F) {
	f.Add("dc-a6-32-01-36-c2")
	f.Add("DC-A6-32-01-36-C2")
	f.Add("dc:a6:32:01:36:c2")
	f.Add("5b154510")
	f.Fuzz(func(t *testing.T, s string) {
		mac, ok := parseDashedMAC(s)
		if !ok {
			return
		}
		if got := inventory.DashedMAC(mac); !strings.EqualFold(got, s) {
			t.Fatalf("parseDashedMAC(%q) = %v, which prints as %q", s, mac, got)
		}
		if back, err := net.ParseMAC(s); err != nil || back.String() != mac.String() {
			t.Fatalf("parseDashedMAC(%q) = %v, net.ParseMAC says %v, %v", s, mac, back, err)
		}
	})
}
