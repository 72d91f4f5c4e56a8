package tftp

import (
	"bytes"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// waitMetric polls a gauge or counter until it reads want (5 s at most).
func waitMetric(t *testing.T, name string, m prometheus.Metric, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := metricValue(t, m)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSendQueue: with one send slot, a second big transfer waits after its
// handshake until the first ends, while a probe and a small file are
// answered at once; the metrics show each state.
func TestSendQueue(t *testing.T) {
	big, small := pattern(200_000), pattern(3000)
	m := NewMetrics(prometheus.NewRegistry())
	srv := startServer(t, &Server{
		Files:     &fakeFiles{files: map[string][]byte{"big": big, "small": small}},
		Metrics:   m,
		MaxActive: 1,
		SmallFile: 4096,
	})

	a := newRawClient(t, srv)
	a.request(rrq(opRRQ, "big", "octet", "tsize", "0"))
	if p := a.recv(3 * time.Second); p.Op != opOACK {
		t.Fatalf("first client: %+v, want OACK", p)
	}
	a.ack(0)
	if p := a.recv(3 * time.Second); p.Op != opDATA || p.Block != 1 {
		t.Fatalf("first client: %+v, want DATA 1", p)
	}

	b := newRawClient(t, srv)
	b.request(rrq(opRRQ, "big", "octet", "tsize", "0"))
	if p := b.recv(3 * time.Second); p.Op != opOACK {
		t.Fatalf("second client: %+v, want OACK", p)
	}
	b.ack(0)
	waitMetric(t, "queued", m.Queued, 1)
	waitMetric(t, "active", m.Active, 1)
	if p, err := b.tryRecv(300 * time.Millisecond); err == nil {
		t.Fatalf("queued client got %+v while the only slot is taken", p)
	}

	probe := newRawClient(t, srv)
	probe.request(rrq(opRRQ, "big", "octet", "tsize", "0", "blksize", "1468"))
	if p := probe.recv(3 * time.Second); p.Op != opOACK || p.Opts["tsize"] != "200000" {
		t.Fatalf("probe: %+v, want OACK with tsize", p)
	}
	probe.sendError(0, "Early terminate")

	s := newRawClient(t, srv)
	s.request(rrq(opRRQ, "small", "octet"))
	if got, _ := readAll(t, s, 1); !bytes.Equal(got, small) {
		t.Fatalf("small file: %d bytes, want %d", len(got), len(small))
	}

	// The first client acknowledges block 1 and reads on; when it is done,
	// the second gets its slot.
	a.ack(1)
	got := readAllFrom(t, a, 2)
	if !bytes.Equal(got, big[512:]) {
		t.Fatalf("first client: %d bytes, want %d", len(got), len(big)-512)
	}
	if p := b.recv(3 * time.Second); p.Op != opDATA || p.Block != 1 {
		t.Fatalf("second client after the first finished: %+v, want DATA 1", p)
	}
	waitMetric(t, "queued", m.Queued, 0)
	b.ack(1)
	if got := readAllFrom(t, b, 2); !bytes.Equal(got, big[512:]) {
		t.Fatalf("second client: %d bytes", len(got))
	}
	waitMetric(t, "active", m.Active, 0)
	waitMetric(t, "transfers ok", m.Transfers.WithLabelValues(OutcomeOK), 3)
	waitMetric(t, "probes", m.Transfers.WithLabelValues(OutcomeProbe), 1)
}

// readAllFrom reads a lock-step transfer from block next on, with
// blksize 512, after the caller acknowledged block next-1.
func readAllFrom(t *testing.T, c *rawClient, next uint16) []byte {
	t.Helper()
	var out bytes.Buffer
	for range 1 << 16 {
		p := c.recv(5 * time.Second)
		if p.Op != opDATA {
			t.Fatalf("unexpected packet %+v", p)
		}
		if p.Block != next {
			continue
		}
		out.Write(p.Data)
		c.ack(p.Block)
		next++
		if len(p.Data) < 512 {
			return out.Bytes()
		}
	}
	t.Fatal("transfer did not end")
	return nil
}
