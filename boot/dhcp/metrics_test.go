package dhcp

import (
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetrics: requests and replies counted by type, mode and class; a
// malformed packet counted as dropped; the pool gauges follow the leases.
func TestMetrics(t *testing.T) {
	h := startHarness(t, fullSettings(t), nil)
	m := h.srv.Metrics
	h.dora(t, "02:00:00:00:00:01")
	h.dora(t, "02:00:00:00:00:02")
	if _, err := h.cl.Exchange(msg(t, dhcpv4.MessageTypeDiscover, "02:00:00:00:00:03"), wait); err != nil {
		t.Fatal(err)
	}
	if _, err := h.cl.Conn.WriteToUDP([]byte("not dhcp"), h.cl.Server); err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"discover": {m.Requests.WithLabelValues("discover", "full", "other"), 3},
		"request":  {m.Requests.WithLabelValues("request", "full", "other"), 2},
		"offer":    {m.Replies.WithLabelValues("offer", "full", "other"), 3},
		"ack":      {m.Replies.WithLabelValues("ack", "full", "other"), 2},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
	for deadline := time.Now().Add(wait); testutil.ToFloat64(m.Dropped.WithLabelValues(DropMalformed)) != 1; {
		if time.Now().After(deadline) {
			t.Fatal("a malformed packet was not counted as dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}

	want := `
# HELP racklet_dhcp_leases Unexpired DHCP leases, by state (offered, bound, declined).
# TYPE racklet_dhcp_leases gauge
racklet_dhcp_leases{state="bound"} 2
racklet_dhcp_leases{state="declined"} 0
racklet_dhcp_leases{state="offered"} 1
# HELP racklet_dhcp_pool_addresses Addresses in the DHCP pool (0 in proxy mode).
# TYPE racklet_dhcp_pool_addresses gauge
racklet_dhcp_pool_addresses 4
# HELP racklet_dhcp_pool_used_ratio Share of the DHCP pool offered or bound (0 to 1; 0 without a pool).
# TYPE racklet_dhcp_pool_used_ratio gauge
racklet_dhcp_pool_used_ratio 0.75
`
	if err := testutil.CollectAndCompare(PoolCollector(h.srv), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
