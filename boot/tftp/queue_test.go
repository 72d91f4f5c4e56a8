package tftp

import (
	"bytes"
	"net"
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

// newRawClientOn is newRawClient bound to another loopback address, so
// the server sees another client.
func newRawClientOn(t *testing.T, srv *net.UDPAddr, ip net.IP) *rawClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		t.Fatalf("client socket on %s: %v", ip, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, srv: srv}
}

// TestGateHolds: with room for one client, a second client's requests
// (a file and a miss) wait unanswered until the first is done and its
// place lingers out; a third's are served anyway after MaxHold, without
// taking the place. The metrics show each state.
func TestGateHolds(t *testing.T) {
	file := pattern(20_000)
	m := NewMetrics(prometheus.NewRegistry())
	srv := startServerOn(t, &Server{
		Files:    &fakeFiles{files: map[string][]byte{"f": file}},
		Metrics:  m,
		MaxNodes: 1,
		MaxHold:  4 * time.Second,
	}, "0.0.0.0:0")
	srv = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.Port}

	a := newRawClient(t, srv)
	a.request(rrq(opRRQ, "f", "octet", "tsize", "0"))
	if p := a.recv(3 * time.Second); p.Op != opOACK {
		t.Fatalf("first client: %+v, want OACK", p)
	}

	b := newRawClientOn(t, srv, net.IPv4(127, 0, 0, 2))
	b.request(rrq(opRRQ, "f", "octet", "tsize", "0"))
	bMiss := newRawClientOn(t, srv, net.IPv4(127, 0, 0, 2))
	bMiss.request(rrq(opRRQ, "nothing", "octet"))
	waitMetric(t, "queued", m.Queued, 2)
	if p, err := b.tryRecv(300 * time.Millisecond); err == nil {
		t.Fatalf("held client got %+v while the gate is full", p)
	}

	// The first client reads its file; the second gets in 2 s later
	// (nodeLinger), before MaxHold.
	start := time.Now()
	if got, _ := readAllAfterOACK(t, a); !bytes.Equal(got, file) {
		t.Fatalf("first client: %d bytes", len(got))
	}
	if p := bMiss.recv(4 * time.Second); p.Op != opERROR || p.Code != errNotFound {
		t.Fatalf("held miss: %+v, want ERROR 1", p)
	}
	if p := b.recv(time.Second); p.Op != opOACK {
		t.Fatalf("held client: %+v, want OACK", p)
	}
	if d := time.Since(start); d < nodeLinger-200*time.Millisecond || d > MaxHoldSlack+nodeLinger {
		t.Errorf("held client let in %v after the first finished, want about %v", d, nodeLinger)
	}
	waitMetric(t, "queued", m.Queued, 0)
	b.ack(0) // b answers: it keeps its place while it reads
	if p := b.recv(time.Second); p.Op != opDATA || p.Block != 1 {
		t.Fatalf("second client: %+v, want DATA 1", p)
	}

	// A third client while b holds the place: served after MaxHold.
	c := newRawClientOn(t, srv, net.IPv4(127, 0, 0, 3))
	held := time.Now()
	c.request(rrq(opRRQ, "f", "octet"))
	waitMetric(t, "queued", m.Queued, 1)
	if got, _ := readAll(t, c, 1); !bytes.Equal(got, file) {
		t.Fatalf("third client: %d bytes", len(got))
	}
	if d := time.Since(held); d < 4*time.Second-200*time.Millisecond {
		t.Errorf("third client served after %v, want MaxHold (4s)", d)
	}
	b.ack(1)
	if got := readAllFrom(t, b, 2); !bytes.Equal(got, file[512:]) {
		t.Fatalf("second client: %d bytes", len(got))
	}
	waitMetric(t, "active", m.Active, 0)
	waitMetric(t, "transfers ok", m.Transfers.WithLabelValues(OutcomeOK), 3)
	waitMetric(t, "misses", m.Transfers.WithLabelValues(OutcomeNotFound), 1)
}

// MaxHoldSlack bounds scheduling delays in the timing checks of a loaded
// machine.
const MaxHoldSlack = 2 * time.Second

// readAllAfterOACK acknowledges the OACK the caller already read and
// reads the file lock-step at blksize 512.
func readAllAfterOACK(t *testing.T, c *rawClient) ([]byte, bool) {
	t.Helper()
	c.ack(0)
	return readAllFrom(t, c, 1), true
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

// TestGateSilentClient: a client that never answers loses its place at its
// first retransmission, so the next client does not wait for MaxHold.
func TestGateSilentClient(t *testing.T) {
	srv := startServerOn(t, &Server{
		Files:    &fakeFiles{files: map[string][]byte{"f": pattern(3000)}},
		MaxNodes: 1,
		MaxHold:  8 * time.Second,
	}, "0.0.0.0:0")
	srv = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: srv.Port}
	silent := newRawClientOn(t, srv, net.IPv4(127, 0, 0, 4))
	silent.request(rrq(opRRQ, "f", "octet", "tsize", "0"))
	if p := silent.recv(3 * time.Second); p.Op != opOACK {
		t.Fatalf("silent client: %+v, want OACK", p)
	}
	start := time.Now()
	real := newRawClientOn(t, srv, net.IPv4(127, 0, 0, 5))
	real.request(rrq(opRRQ, "f", "octet", "tsize", "0"))
	if got, _ := readAll(t, real, 1); len(got) != 3000 {
		t.Fatalf("real client: %d bytes", len(got))
	}
	if d := time.Since(start); d > DefaultTimeout+MaxHoldSlack {
		t.Errorf("real client waited %v behind a silent one, want about the silent one's first retransmit (%v)", d, DefaultTimeout)
	}
}
