package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/racklet/racklet-boot/boot/dhcp"
	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/imagestore"
	"github.com/racklet/racklet-boot/internal/version"
)

// Metric names the server exports besides those of its components
// (racklet_dhcp_*, racklet_tftp_*, racklet_http_*).
const (
	MetricBuildInfo          = "racklet_build_info"                                   // gauge{version,revision,goversion} = 1
	MetricReloads            = "racklet_config_reloads_total"                         // counter{result}: ok, rejected, failed
	MetricReloadSuccess      = "racklet_config_last_reload_successful"                // gauge: 1 when the last reload was applied
	MetricReloadSuccessTime  = "racklet_config_last_reload_success_timestamp_seconds" // gauge: when the config in use was applied
	MetricConfigNodes        = "racklet_config_nodes"                                 // gauge: nodes in the config in use
	MetricAttest             = "racklet_attest_quotes_total"                          // counter{outcome}: ok or a refusal code
	MetricImageLookups       = "racklet_image_lookups_total"                          // counter{outcome}: ok, refused, error
	MetricImagePrefetch      = "racklet_image_prefetch_total"                         // counter{result}: ok, error
	MetricImagesReady        = "racklet_images_ready"                                 // gauge: assigned images verified and cached
	MetricImageCacheBlobs    = "racklet_image_cache_blobs"                            // gauge
	MetricImageCacheBytes    = "racklet_image_cache_bytes"                            // gauge
	MetricImageCacheGCRemove = "racklet_image_cache_gc_removed_total"                 // counter: blobs removed
)

// metrics are the server's own collectors.
type metrics struct {
	reloads       *prometheus.CounterVec
	reloadOK      prometheus.Gauge
	reloadTime    prometheus.Gauge
	nodes         prometheus.Gauge
	attest        *prometheus.CounterVec
	imageLookups  *prometheus.CounterVec
	imagePrefetch *prometheus.CounterVec
	imagesReady   prometheus.Gauge
	gcRemoved     prometheus.Counter
}

// newMetrics makes the server's own metrics and registers them in reg
// (with the build info). A collector some other server registered there
// first is kept, not replaced.
func newMetrics(reg prometheus.Registerer) *metrics {
	b := version.Get()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        MetricBuildInfo,
		Help:        "Always 1; the labels say which racklet-boot build is running.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision, "goversion": b.GoVersion},
	})
	info.Set(1)
	m := &metrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricReloads,
			Help: "Config reloads, by result: ok (applied), rejected (the file did not validate; the previous config keeps serving), failed (applied, with errors).",
		}, []string{"result"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricReloadSuccess,
			Help: "1 when the last config load or reload was applied, 0 when it was rejected or failed.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricReloadSuccessTime,
			Help: "Unix time the config in use was applied.",
		}),
		nodes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricConfigNodes,
			Help: "Nodes the config in use names.",
		}),
		attest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAttest,
			Help: "HAT quotes checked, by outcome: ok (secrets released), a refusal code (nonce, not-enrolled, pending, wrong-key, measurement, malformed, unknown-node) or error.",
		}, []string{"outcome"}),
		imageLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricImageLookups,
			Help: "Boot file lookups in verified images, by outcome: ok, refused (untrusted or tampered), error (not fetched).",
		}, []string{"outcome"}),
		imagePrefetch: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricImagePrefetch,
			Help: "Rounds of verifying and fetching the assigned images, by result.",
		}, []string{"result"}),
		imagesReady: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricImagesReady,
			Help: "Assigned images verified and cached by the last successful prefetch.",
		}),
		gcRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricImageCacheGCRemove,
			Help: "Blobs the image cache clean-up removed.",
		}),
	}
	mustRegister(reg, info, m.reloads, m.reloadOK, m.reloadTime, m.nodes, m.attest,
		m.imageLookups, m.imagePrefetch, m.imagesReady, m.gcRemoved)
	// Pre-create the label values a dashboard shows from the start.
	for _, r := range []string{"ok", "rejected", "failed"} {
		m.reloads.WithLabelValues(r)
	}
	for _, o := range []string{"ok", "refused", "error"} {
		m.imageLookups.WithLabelValues(o)
	}
	m.attest.WithLabelValues("ok")
	return m
}

// mustRegister registers cs in reg; one already registered (a second
// server on a shared registry) is left as it is, any other error panics.
func mustRegister(reg prometheus.Registerer, cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(fmt.Sprintf("register metrics: %v", err))
			}
		}
	}
}

// componentCollectors are the collectors that read a component's state at
// every scrape: the DHCP pool and the image cache.
func (s *Server) componentCollectors() []prometheus.Collector {
	return []prometheus.Collector{dhcp.PoolCollector(s.dhcp), cacheCollector{s.images}}
}

// applied records a config load or reload that was applied (err: with errors).
func (m *metrics) applied(nodes int, reload bool, err error) {
	m.nodes.Set(float64(nodes))
	if err != nil {
		m.reloadOK.Set(0)
		if reload {
			m.reloads.WithLabelValues("failed").Inc()
		}
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.SetToCurrentTime()
	if reload {
		m.reloads.WithLabelValues("ok").Inc()
	}
}

// rejected records a config file that did not validate.
func (m *metrics) rejected(error) {
	m.reloads.WithLabelValues("rejected").Inc()
	m.reloadOK.Set(0)
}

// prefetched records one prefetch round.
func (m *metrics) prefetched(ready int, removed int, err error) {
	if err != nil {
		m.imagePrefetch.WithLabelValues("error").Inc()
		return
	}
	m.imagePrefetch.WithLabelValues("ok").Inc()
	m.imagesReady.Set(float64(ready))
	m.gcRemoved.Add(float64(removed))
}

// countedImages counts the image lookups of the resolver.
type countedImages struct {
	next resolve.Images
	m    *metrics
}

func (c countedImages) Boot(ctx context.Context, ref string) (*resolve.ImageBoot, error) {
	b, err := c.next.Boot(ctx, ref)
	switch {
	case err == nil:
		c.m.imageLookups.WithLabelValues("ok").Inc()
	case errors.Is(err, resolve.ErrRefused):
		c.m.imageLookups.WithLabelValues("refused").Inc()
	default:
		c.m.imageLookups.WithLabelValues("error").Inc()
	}
	return b, err
}

// cacheCollector reports the image cache's size at every scrape.
type cacheCollector struct{ s *imagestore.Store }

var (
	cacheBlobsDesc = prometheus.NewDesc(MetricImageCacheBlobs, "Blobs in the verified image cache.", nil, nil)
	cacheBytesDesc = prometheus.NewDesc(MetricImageCacheBytes, "Bytes in the verified image cache.", nil, nil)
)

func (c cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cacheBlobsDesc
	ch <- cacheBytesDesc
}

func (c cacheCollector) Collect(ch chan<- prometheus.Metric) {
	u, err := c.s.Usage()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(cacheBlobsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(cacheBlobsDesc, prometheus.GaugeValue, float64(u.Blobs))
	ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(u.Bytes))
}
