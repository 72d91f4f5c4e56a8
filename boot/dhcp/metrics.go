package dhcp

import (
	"errors"
	"fmt"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names the DHCP server exports.
const (
	MetricRequests  = "racklet_dhcp_requests_total"  // counter{type,mode,class}
	MetricReplies   = "racklet_dhcp_replies_total"   // counter{type,mode,class}
	MetricDropped   = "racklet_dhcp_dropped_total"   // counter{reason}
	MetricPoolSize  = "racklet_dhcp_pool_addresses"  // gauge: addresses in the pool (full mode)
	MetricLeases    = "racklet_dhcp_leases"          // gauge{state}: unexpired leases
	MetricPoolInUse = "racklet_dhcp_pool_used_ratio" // gauge: offered+bound leases / pool size
)

// Reasons a request gets no answer, the values of racklet_dhcp_dropped_total's label.
const (
	DropMalformed     = "malformed"       // not DHCP, or not a client request
	DropUnknown       = "unknown_machine" // unknownMachines: ignore
	DropNotBootClient = "not_boot_client" // proxy mode leaves other machines to the router
	DropRelayed       = "relay_outside"   // relayed from outside the subnet
	DropNoAddress     = "no_address"      // full mode: the pool has no free address
)

// Metrics are the DHCP server's Prometheus collectors. A nil *Metrics
// records nothing.
type Metrics struct {
	Requests *prometheus.CounterVec
	Replies  *prometheus.CounterVec
	Dropped  *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). Collectors an earlier call registered are shared, so
// servers may share a registry; any other registration error panics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "DHCP requests from machines the server answers for, by message type, mode (full, proxy, pxe for port 4011) and client class (rpi4, rpi5, bios, uefi-arm64, ipxe, ...).",
		}, []string{"type", "mode", "class"}),
		Replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricReplies,
			Help: "DHCP replies sent, by message type (offer, ack, nak), mode and client class.",
		}, []string{"type", "mode", "class"}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDropped,
			Help: "DHCP packets not answered, by reason (malformed, unknown_machine, not_boot_client, relay_outside, no_address).",
		}, []string{"reason"}),
	}
	if reg != nil {
		m.Requests = register(reg, m.Requests)
		m.Replies = register(reg, m.Replies)
		m.Dropped = register(reg, m.Dropped)
	}
	for _, r := range []string{DropMalformed, DropUnknown, DropNotBootClient, DropRelayed, DropNoAddress} {
		m.Dropped.WithLabelValues(r) // every reason shows, at 0 until it happens
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old
		}
	}
	panic(fmt.Sprintf("register dhcp metrics: %v", err))
}

// mode is the mode label of an exchange.
func (x *exchange) mode() string {
	if x.alt {
		return "pxe"
	}
	return string(x.st.Mode)
}

// class is the client class label of an exchange: Client.Kind, or
// "other" for machines that are not boot clients.
func (x *exchange) class() string {
	if k := x.c.Kind(); k != "" {
		return k
	}
	return "other"
}

func (s *Server) countRequest(x *exchange) {
	if m := s.Metrics; m != nil {
		m.Requests.WithLabelValues(eventName(x.req.MessageType()), x.mode(), x.class()).Inc()
	}
}

func (s *Server) countReply(x *exchange, r *dhcpv4.DHCPv4) {
	if m := s.Metrics; m != nil {
		m.Replies.WithLabelValues(eventName(r.MessageType()), x.mode(), x.class()).Inc()
	}
}

func (s *Server) countDrop(reason string) {
	if m := s.Metrics; m != nil {
		m.Dropped.WithLabelValues(reason).Inc()
	}
}

// PoolCollector exports the pool size, the unexpired leases by state and
// the share of the pool in use, read from s at every scrape.
func PoolCollector(s *Server) prometheus.Collector { return poolCollector{s} }

type poolCollector struct{ s *Server }

var (
	poolSizeDesc = prometheus.NewDesc(MetricPoolSize, "Addresses in the DHCP pool (0 in proxy mode).", nil, nil)
	leasesDesc   = prometheus.NewDesc(MetricLeases, "Unexpired DHCP leases, by state (offered, bound, declined).", []string{"state"}, nil)
	poolUseDesc  = prometheus.NewDesc(MetricPoolInUse, "Share of the DHCP pool offered or bound (0 to 1; 0 without a pool).", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolSizeDesc
	ch <- leasesDesc
	ch <- poolUseDesc
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	now := c.s.now()
	size, used := c.s.table.poolUse(now)
	counts := c.s.table.outstanding(now)
	c.s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(poolSizeDesc, prometheus.GaugeValue, float64(size))
	for _, st := range []string{StateOffered, StateBound, StateDeclined} {
		ch <- prometheus.MustNewConstMetric(leasesDesc, prometheus.GaugeValue, float64(counts[st]), st)
	}
	use := 0.0
	if size > 0 {
		use = float64(used) / float64(size)
	}
	ch <- prometheus.MustNewConstMetric(poolUseDesc, prometheus.GaugeValue, use)
}

// poolUse returns the pool's size and how many of its addresses an
// unexpired offer or binding holds.
func (t *leaseTable) poolUse(now time.Time) (size, used int) {
	if t.pool.start > t.pool.end {
		return 0, 0
	}
	size = int(t.pool.end - t.pool.start + 1)
	for _, l := range t.byAddr {
		if (l.State == StateOffered || l.State == StateBound) && l.Expiry.After(now) && t.inPool(l.Addr) {
			used++
		}
	}
	return size, used
}
