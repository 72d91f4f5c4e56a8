package tftp

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestProbe plays the Raspberry Pi and EDK2 size probes: OACK, then a
// client ERROR, then the real read. The probe is an event of its own, not
// an error.
func TestProbe(t *testing.T) {
	data := pattern(3000)
	for name, abort := range map[string]string{
		"raspberry pi": "Early terminate",
		"edk2":         "User aborted the transfer",
	} {
		t.Run(name, func(t *testing.T) {
			events := &eventLog{}
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			srv := startServer(t, &Server{
				Files:   &fakeFiles{node: "pi-01", files: map[string][]byte{"kernel8.img": data}},
				Events:  events,
				Metrics: m,
			})
			c := newRawClient(t, srv)
			c.request(rrq(opRRQ, "kernel8.img", "octet", "tsize", "0", "blksize", "1468"))
			p := c.recv(5 * time.Second)
			if diff := cmp.Diff(map[string]string{"tsize": "3000", "blksize": "1468"}, p.Opts); p.Op != opOACK || diff != "" {
				t.Fatalf("got %+v, want OACK (-want +got):\n%s", p, diff)
			}
			c.sendError(0, abort)
			ev := events.waitEvents(t, 1)
			if ev[0].Type != "tftp.probe" || ev[0].Node != "pi-01" || !strings.Contains(ev[0].Detail, "kernel8.img") {
				t.Errorf("probe event = %+v, want tftp.probe for pi-01 naming the file", ev[0])
			}

			c2 := newRawClient(t, srv)
			c2.request(rrq(opRRQ, "kernel8.img", "octet", "tsize", "0", "blksize", "1468"))
			got, _ := readAll(t, c2, 1)
			if !bytes.Equal(got, data) {
				t.Fatalf("read after probe: got %d bytes, want %d", len(got), len(data))
			}
			ev = events.waitEvents(t, 2)
			if ev[1].Type != "tftp.get" || ev[1].Bytes != int64(len(data)) {
				t.Errorf("read event = %+v, want tftp.get with %d bytes", ev[1], len(data))
			}
			if !strings.Contains(ev[1].Detail, "blksize=1468") || !strings.Contains(ev[1].Detail, "windowsize=1") {
				t.Errorf("read event detail %q lacks blksize/windowsize", ev[1].Detail)
			}
			for outcome, want := range map[string]float64{OutcomeProbe: 1, OutcomeOK: 1, OutcomeError: 0} {
				if got := metricValue(t, m.Transfers.WithLabelValues(outcome)); got != want {
					t.Errorf("transfers{outcome=%q} = %v, want %v", outcome, got, want)
				}
			}
			if got := metricValue(t, m.Active); got != 0 {
				t.Errorf("active transfers = %v after the transfers ended, want 0", got)
			}
		})
	}
}

// TestProbeAfterData covers a probe without options: the client aborts
// after DATA 1.
func TestProbeAfterData(t *testing.T) {
	events := &eventLog{}
	srv := startServer(t, &Server{Files: &fakeFiles{node: "pi-01", files: map[string][]byte{"f": pattern(2000)}}, Events: events})
	c := newRawClient(t, srv)
	c.request(rrq(opRRQ, "f", "octet"))
	if p := c.recv(5 * time.Second); p.Op != opDATA || p.Block != 1 {
		t.Fatalf("got %+v, want DATA 1", p)
	}
	c.sendError(0, "Early terminate")
	if ev := events.waitEvents(t, 1); ev[0].Type != "tftp.probe" {
		t.Errorf("event = %+v, want tftp.probe", ev[0])
	}
}

// TestSilentClient checks that a client that never ACKs is dropped after
// the retries, with the window resent each time.
func TestSilentClient(t *testing.T) {
	events := &eventLog{}
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	srv := startServer(t, &Server{
		Files:   &fakeFiles{node: "n", files: map[string][]byte{"f": pattern(5000)}},
		Events:  events,
		Metrics: m,
		Timeout: 50 * time.Millisecond,
		Retries: 3,
	})
	c := newRawClient(t, srv)
	c.request(rrq(opRRQ, "f", "octet", "blksize", "512", "windowsize", "2"))
	oacks, datas := 0, 0
	var last packet
	for range 100 {
		p, err := c.tryRecv(3 * time.Second)
		if err != nil {
			break
		}
		last = p
		switch p.Op {
		case opOACK:
			oacks++
		case opDATA:
			datas++
		}
		if p.Op == opERROR {
			break
		}
	}
	if oacks != 4 || datas != 0 {
		t.Errorf("got %d OACKs and %d DATA, want 4 OACKs (1 + 3 retries) and no DATA", oacks, datas)
	}
	if last.Op != opERROR {
		t.Errorf("last packet %+v, want an ERROR telling the client it timed out", last)
	}
	ev := events.waitEvents(t, 1)
	if ev[0].Type != "tftp.error" || !strings.Contains(ev[0].Detail, "outcome=timeout") {
		t.Errorf("event = %+v, want tftp.error with outcome=timeout", ev[0])
	}
	if got := metricValue(t, m.Transfers.WithLabelValues(OutcomeTimeout)); got != 1 {
		t.Errorf("timeout count = %v, want 1", got)
	}

	// Same after the OACK was acknowledged: windows are resent.
	c2 := newRawClient(t, srv)
	c2.request(rrq(opRRQ, "f", "octet", "windowsize", "2"))
	if p := c2.recv(3 * time.Second); p.Op != opOACK {
		t.Fatalf("got %+v, want OACK", p)
	}
	c2.ack(0)
	blocks := map[uint16]int{}
	for range 100 {
		p, err := c2.tryRecv(3 * time.Second)
		if err != nil || p.Op != opDATA {
			break
		}
		blocks[p.Block]++
	}
	if diff := cmp.Diff(map[uint16]int{1: 4, 2: 4}, blocks); diff != "" {
		t.Errorf("blocks sent (-want +got):\n%s", diff)
	}
}

// TestNetascii checks the netascii translation (LF to CR LF).
func TestNetascii(t *testing.T) {
	srv := startServer(t, &Server{Files: &fakeFiles{files: map[string][]byte{"cfg": []byte(strings.Repeat("line\n", 300))}}})
	c := newRawClient(t, srv)
	c.request(rrq(opRRQ, "cfg", "netascii", "windowsize", "8", "tsize", "0"))
	got, opts := readAll(t, c, 1)
	if want := strings.Repeat("line\r\n", 300); string(got) != want {
		t.Errorf("got %d bytes, want %d bytes of CR LF lines", len(got), len(want))
	}
	if opts != nil {
		t.Errorf("netascii OACK %v, want none (no windowsize or tsize for netascii)", opts)
	}
}

// TestShutdown cancels the server during a transfer: Serve returns nil and
// the client is told.
func TestShutdown(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Files: &fakeFiles{files: map[string][]byte{"f": pattern(100000)}}, Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, conn) }()
	c := newRawClient(t, conn.LocalAddr().(*net.UDPAddr))
	c.request(rrq(opRRQ, "f", "octet"))
	if p := c.recv(5 * time.Second); p.Op != opDATA {
		t.Fatalf("got %+v, want DATA", p)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if p := c.recv(5 * time.Second); p.Op != opERROR {
		t.Errorf("got %+v after shutdown, want ERROR", p)
	}
}

// TestNewMetricsTwice registers two servers' metrics on one registry.
func TestNewMetricsTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.BytesSent.Add(3)
	if got := metricValue(t, b.BytesSent); got != 3 {
		t.Errorf("second Metrics sees %v bytes, want the shared counter's 3", got)
	}
}

// metricValue reads a counter's or gauge's current value.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither a counter nor a gauge", m.Desc())
	return 0
}
