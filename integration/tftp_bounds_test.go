package integration

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/pisim"
)

// TestTFTPHalfOpenFlood reruns issue 14's TFTP attack from another
// namespace: 1,000 clients on 250 addresses ask for the kernel and never
// acknowledge anything, half of them with the largest timeout option
// (255 s, which once pinned a slot for 81 minutes). Meanwhile a simulated
// Pi 4 boots from a third namespace. The Pi must load its kernel, and
// every flooding transfer must be gone 20 s after it started (plus the
// time the flood took to send and some slack for a loaded machine).
func TestTFTPHalfOpenFlood(t *testing.T) {
	need(t, "ss", "curl")
	ctx := t.Context()
	dir := t.TempDir()
	pi := pisim.NewPis(1, 4, 7)[0]
	boot := bootDir(t, map[string]string{
		"config.txt":  "arm_64bit=1\nkernel=kernel8.img\n",
		"cmdline.txt": "console=serial0,115200\n",
		"fixup4.dat":  strings.Repeat("f", 5000),
		"start4.elf":  strings.Repeat("s", 200_000),
		"kernel8.img": strings.Repeat("k", 4<<20),
	})

	sw := newSwitch(t)
	srvNS, atkNS, rackNS := newHost(t, "srv"), newHost(t, "atk"), newHost(t, "rack")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.83.0.1/16")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, atkNS, "eth0", mustPrefix("10.83.1.1/16")); err != nil {
		t.Fatal(err)
	}
	if err := sw.Attach(ctx, rackNS, "eth0", mustPrefix("")); err != nil {
		t.Fatal(err)
	}
	var batch strings.Builder
	for i := 2; i <= 250; i++ {
		fmt.Fprintf(&batch, "addr add 10.83.1.%d/16 dev eth0\n", i)
	}
	if err := atkNS.Run(ctx, "ip", "-batch", writeFile(t, dir, "addrs", batch.String())); err != nil {
		t.Fatal(err)
	}
	// unknownMachines: default, so the flood is served, not refused: the
	// worst case for the bounds.
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.83.0.1", filepath.Join(dir, "data"), `mode: full
pool: {start: 10.83.0.100, end: 10.83.0.150}
leaseTime: 10m`, fmt.Sprintf(`unknownMachines: default
default: {dir: %s}
nodes:
  - name: pi-01
    kind: rpi4
    serial: %q
    boot: {dir: %s}
`, boot, pi.Name(), boot)))

	// The flood: 1,000 sockets inside the attacker's namespace, 4 per
	// address, each sending one RRQ and never answering; the sockets stay
	// open, as a flooder's would.
	type flooder struct {
		c    *net.UDPConn
		wait string
	}
	var fl []flooder
	floodStart := time.Now()
	err := atkNS.Do(func() error {
		for i := range 1000 {
			ip := net.IPv4(10, 83, 1, byte(1+i/4))
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
			if err != nil {
				return err
			}
			fl = append(fl, flooder{c: c})
			opts := []string{"tsize", "0", "blksize", "1468"}
			if i%2 == 0 {
				opts = append(opts, "timeout", "255")
			}
			if _, err := c.WriteToUDP(rrq("kernel8.img", opts...), &net.UDPAddr{IP: net.IPv4(10, 83, 0, 1), Port: 69}); err != nil {
				return err
			}
			if i%100 == 0 {
				// Let ARP resolve the server first (packets queued behind an
				// unresolved neighbour are dropped past a few hundred),
				// then pace the flood so no socket buffer overflows.
				time.Sleep(50 * time.Millisecond)
			}
		}
		return nil
	})
	for _, f := range fl {
		t.Cleanup(func() { f.c.Close() })
	}
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	floodSent := time.Since(floodStart)

	// The real Pi boots while the flood holds its transfers.
	var out bytes.Buffer
	sim := rackNS.Command(ctx, filepath.Join(bin, "racklet-boot"), "simulate", "--interface", "eth0", "--nodes", "1",
		"--kind", "rpi4", "--seed", "7", "-o", "json", "--log-level", "warn")
	sim.Stdout, sim.Stderr = &out, os.Stderr
	simStart := time.Now()
	if err := sim.Run(); err != nil {
		t.Fatalf("simulate: %v\n%s", err, out.String())
	}
	var results []*pisim.Result
	if err := json.Unmarshal(out.Bytes(), &results); err != nil || len(results) != 1 {
		t.Fatalf("simulate output: %v\n%s", err, out.String())
	}
	r := results[0]
	t.Logf("pi booted in %s during the flood: %s (%d bytes, %d retries)", time.Since(simStart).Round(time.Millisecond), r.Verdict, r.Bytes, r.Retries)
	if !r.KernelLoaded {
		t.Fatalf("the Pi did not boot during the flood: %s %s", r.Verdict, r.Error)
	}

	// Every flooding transfer ends by IdleTimeout (20 s) after its request
	// reached the server: each one's log line says how long it lived.
	deadline := floodStart.Add(floodSent + 20*time.Second + 10*time.Second)
	var durations []time.Duration
	outcomes := map[string]int{}
	for {
		durations, outcomes = floodTransfers(srv.Output())
		if len(durations) >= len(fl) || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	longest := time.Duration(0)
	for _, d := range durations {
		longest = max(longest, d)
	}
	t.Logf("flooding transfers by outcome: %v; the longest held its slot %s", outcomes, longest.Round(time.Millisecond))
	for _, ns := range []netlab.Namespace{srvNS, atkNS} {
		if out, err := ns.Output(ctx, "nstat", "-az", "UdpInDatagrams", "UdpRcvbufErrors", "UdpSndbufErrors", "IpOutNoRoutes"); err == nil {
			t.Logf("%s:\n%s", ns, out)
		}
	}
	if len(durations) < 990 || outcomes["timeout"] != len(durations) {
		t.Errorf("%d flooding transfers logged (%v), want at least 990, all ended by timeout", len(durations), outcomes)
	}
	if longest > 20*time.Second {
		t.Errorf("a client that never acknowledged held its transfer %s, want <= 20 s", longest)
	}
	// What the flood got: an OACK each, a timeout option of 255 left out.
	oacks, withTimeout := 0, 0
	buf := make([]byte, 2048)
	for _, f := range fl {
		_ = f.c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		n, _, err := f.c.ReadFromUDP(buf)
		if err != nil || n < 2 || binary.BigEndian.Uint16(buf) != 6 {
			continue
		}
		oacks++
		if bytes.Contains(buf[:n], []byte("timeout\x00")) {
			withTimeout++
		}
	}
	t.Logf("flood: %d requests sent in %s, %d OACKs, %d with a timeout option", len(fl), floodSent.Round(time.Millisecond), oacks, withTimeout)
	if withTimeout != 0 {
		t.Errorf("%d OACKs granted timeout 255", withTimeout)
	}
	const metrics = "http://10.83.0.1/metrics"
	if open := metric(t, srvNS, metrics, "racklet_tftp_active_transfers") + metric(t, srvNS, metrics, "racklet_tftp_queued_transfers"); open != 0 {
		t.Errorf("%v transfers still open after the flood ended", open)
	}
	if len(lines(srv.Output(), "tftp transfer", "kernel8.img", `"outcome":"ok"`)) == 0 {
		t.Error("the server logged no complete kernel transfer")
	}
}

// floodTransfers reads the server's log lines of finished transfers from
// the flooding addresses: each one's duration, and the count by outcome.
func floodTransfers(log string) ([]time.Duration, map[string]int) {
	var ds []time.Duration
	outcomes := map[string]int{}
	for _, l := range lines(log, `"msg":"tftp transfer"`, `"ip":"10.83.1.`) {
		var e struct {
			Outcome  string
			Duration time.Duration
		}
		if json.Unmarshal([]byte(l), &e) == nil {
			outcomes[e.Outcome]++
			ds = append(ds, e.Duration)
		}
	}
	return ds, outcomes
}

// rrq builds a TFTP read request in octet mode with options.
func rrq(name string, opts ...string) []byte {
	b := []byte{0, 1}
	for _, s := range append([]string{name, "octet"}, opts...) {
		b = append(append(b, s...), 0)
	}
	return b
}

// metric reads one series (name with its labels, as /metrics prints it)
// from racklet-boot's /metrics, fetched with curl inside ns; 0 when absent.
func metric(t *testing.T, ns netlab.Namespace, url, series string) float64 {
	t.Helper()
	out, err := ns.Output(t.Context(), "curl", "-sf", "--max-time", "5", url)
	if err != nil {
		t.Fatalf("fetch metrics: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", series, err)
			}
			return f
		}
	}
	return 0
}
