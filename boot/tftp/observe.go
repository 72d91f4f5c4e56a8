package tftp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/racklet/racklet-boot/store"
)

// Transfer outcomes, used in events, logs and the outcome metric label.
const (
	OutcomeOK       = "ok"        // file sent and last block acknowledged
	OutcomeProbe    = "probe"     // client ended it before any data was acknowledged (size probe)
	OutcomeNotFound = "not_found" // resolver found nothing (ERROR 1)
	OutcomeRefused  = "refused"   // request or resolver refused it (ERROR 2, 4, 8)
	OutcomeBusy     = "busy"      // MaxTransfers or MaxPerClient reached
	OutcomeTimeout  = "timeout"   // client stopped acknowledging, or the transfer ran past MaxDuration
	OutcomeAborted  = "aborted"   // client sent an ERROR mid-transfer
	OutcomeError    = "error"     // server-side failure (resolver, read, socket)
)

// EventSink receives one event per finished transfer of a known node.
// store.Store satisfies it.
type EventSink interface {
	AddEvent(ctx context.Context, e store.Event) error
}

// Metrics are the server's Prometheus collectors. A nil *Metrics records
// nothing.
type Metrics struct {
	Transfers *prometheus.CounterVec   // racklet_tftp_transfers_total{outcome}
	BytesSent prometheus.Counter       // racklet_tftp_bytes_sent_total
	Active    prometheus.Gauge         // racklet_tftp_active_transfers
	Queued    prometheus.Gauge         // racklet_tftp_queued_transfers (held requests)
	Refused   *prometheus.CounterVec   // racklet_tftp_refused_total{reason}
	QueueWait prometheus.Histogram     // racklet_tftp_queue_wait_seconds
	Duration  *prometheus.HistogramVec // racklet_tftp_transfer_duration_seconds{outcome}
}

// NewMetrics creates the collectors and registers them with reg (nil: not
// registered). Collectors already registered by an earlier call are reused,
// so two servers may share one registry; any other registration error panics,
// as prometheus.MustRegister does.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "racklet_tftp_transfers_total",
			Help: "TFTP read requests handled, by outcome.",
		}, []string{"outcome"}),
		BytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "racklet_tftp_bytes_sent_total",
			Help: "File bytes sent in TFTP DATA packets, retransmissions included.",
		}),
		Active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "racklet_tftp_active_transfers",
			Help: "TFTP transfers in progress and not held: opening, in the option handshake, or sending.",
		}),
		Queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "racklet_tftp_queued_transfers",
			Help: "TFTP requests held unanswered while the server serves MaxNodes other clients first.",
		}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "racklet_tftp_refused_total",
			Help: "TFTP read requests refused with \"server busy\", by the limit reached (server_full, client_full).",
		}, []string{"reason"}),
		QueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "racklet_tftp_queue_wait_seconds",
			Help:    "Time TFTP requests were held before they were served.",
			Buckets: []float64{.01, .1, .5, 1, 2, 5, 10, 15, 20, 30},
		}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "racklet_tftp_transfer_duration_seconds",
			Help:    "Duration of TFTP transfers, by outcome.",
			Buckets: []float64{.001, .01, .05, .1, .5, 1, 2, 5, 10, 30, 60},
		}, []string{"outcome"}),
	}
	if reg == nil {
		return m
	}
	m.Transfers = register(reg, m.Transfers)
	m.BytesSent = register(reg, m.BytesSent)
	m.Active = register(reg, m.Active)
	m.Queued = register(reg, m.Queued)
	m.Refused = register(reg, m.Refused)
	m.QueueWait = register(reg, m.QueueWait)
	m.Duration = register(reg, m.Duration)
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
	panic(fmt.Sprintf("register tftp metrics: %v", err))
}

// result describes one finished (or refused) request.
type result struct {
	Client     string
	File       string // name as requested
	Node       string // node name from the resolver, "" when unknown
	Outcome    string
	Bytes      int64 // file bytes acknowledged by the client
	Sent       int64 // file bytes sent, retransmissions included
	Duration   time.Duration
	Blksize    int
	Windowsize int
	Timeouts   int // windows resent after a timeout
	Err        error
}

// finish logs, records and counts one result.
func (s *Server) finish(ctx context.Context, r result) {
	attrs := []slog.Attr{
		slog.String("ip", r.Client),
		slog.String("file", r.File),
		slog.String("outcome", r.Outcome),
	}
	if r.Node != "" {
		attrs = append(attrs, slog.String("node", r.Node))
	}
	if r.Blksize > 0 {
		attrs = append(attrs,
			slog.Int64("bytes", r.Bytes),
			slog.Duration("duration", r.Duration),
			slog.Int("blksize", r.Blksize),
			slog.Int("windowsize", r.Windowsize))
	}
	if r.Timeouts > 0 {
		attrs = append(attrs, slog.Int("timeouts", r.Timeouts))
	}
	level := slog.LevelInfo
	switch r.Outcome {
	case OutcomeNotFound, OutcomeProbe:
		level = slog.LevelDebug
	case OutcomeError, OutcomeTimeout:
		level = slog.LevelWarn
	}
	if r.Err != nil {
		attrs = append(attrs, slog.String("err", r.Err.Error()))
	}
	s.logger().LogAttrs(ctx, level, "tftp transfer", attrs...)

	if m := s.Metrics; m != nil {
		m.Transfers.WithLabelValues(r.Outcome).Inc()
		m.BytesSent.Add(float64(r.Sent))
		if r.Blksize > 0 {
			m.Duration.WithLabelValues(r.Outcome).Observe(r.Duration.Seconds())
		}
	}

	if s.Events == nil || r.Node == "" {
		return
	}
	typ := "tftp.get"
	switch r.Outcome {
	case OutcomeProbe:
		typ = "tftp.probe"
	case OutcomeOK:
	default:
		typ = "tftp.error"
	}
	detail := fmt.Sprintf("%s outcome=%s blksize=%d windowsize=%d duration=%s client=%s",
		r.File, r.Outcome, r.Blksize, r.Windowsize, r.Duration.Round(time.Millisecond), r.Client)
	if r.Err != nil {
		detail += " err=" + r.Err.Error()
	}
	// The transfer is over; record it even when the server is shutting down.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.Events.AddEvent(ectx, store.Event{
		Time: time.Now(), Node: r.Node, Type: typ, Detail: detail, Bytes: r.Bytes,
	})
	if err != nil {
		s.logger().Warn("record tftp event", "node", r.Node, "err", err)
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Log == nil {
		return discard
	}
	return s.Log
}

var discard = slog.New(slog.DiscardHandler)
