package httpboot

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metric names the server registers. Labels: route is one of boot, ipxe,
// pi, api, healthz, metrics, index, mount, other; code is the HTTP status.
const (
	MetricRequests = "racklet_http_requests_total"           // counter{route,code}
	MetricBytes    = "racklet_http_response_bytes_total"     // counter{route}: body bytes sent
	MetricInFlight = "racklet_http_requests_in_flight"       // gauge
	MetricDuration = "racklet_http_request_duration_seconds" // histogram{route}
	// MetricConnsRefused counts connections closed on arrival because too
	// many were open: reason is "total" or "per-client".
	MetricConnsRefused = "racklet_http_connections_refused_total" // counter{reason}
)

type metrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	inFlight prometheus.Gauge
	duration *prometheus.HistogramVec
	refused  *prometheus.CounterVec
}

func newPrivateRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// newMetrics registers the server's metrics in reg. When another Server
// already registered them there (same names and labels), it shares them.
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRequests,
			Help: "HTTP requests served, by route and status code.",
		}, []string{"route", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricBytes,
			Help: "HTTP response body bytes sent, by route.",
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricInFlight,
			Help: "HTTP requests being served now.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricDuration,
			Help:    "Time from request to the last body byte, by route.",
			Buckets: []float64{.001, .005, .025, .1, .5, 2.5, 10, 60, 300},
		}, []string{"route"}),
	}
	m.refused = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: MetricConnsRefused,
		Help: "HTTP connections closed on arrival because too many were open, by reason (total, per-client).",
	}, []string{"reason"}))
	m.requests = register(reg, m.requests)
	m.bytes = register(reg, m.bytes)
	m.inFlight = register(reg, m.inFlight)
	m.duration = register(reg, m.duration)
	return m
}

// register registers c, or returns the collector already registered under
// the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("register http metrics: " + err.Error())
	}
	return c
}

// exposition serves reg in the Prometheus text (or negotiated) format.
func (m *metrics) exposition(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
