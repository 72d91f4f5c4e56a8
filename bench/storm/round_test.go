package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/pisim"
)

func TestPercentile(t *testing.T) {
	s := func(v ...int) []time.Duration {
		d := make([]time.Duration, len(v))
		for i, x := range v {
			d[i] = time.Duration(x)
		}
		return d
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	tests := map[string]struct {
		in   []time.Duration
		p    int
		want time.Duration
	}{
		"empty":          {in: nil, p: 50, want: 0},
		"one":            {in: s(7), p: 99, want: 7},
		"p50 of 4":       {in: s(4, 1, 3, 2), p: 50, want: 2},
		"p50 of 100":     {in: s(hundred...), p: 50, want: 50},
		"p99 of 100":     {in: s(hundred...), p: 99, want: 99},
		"max of 100":     {in: s(hundred...), p: 100, want: 100},
		"p99 of 10 is 9": {in: s(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), p: 99, want: 10},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, percentile(tc.in, tc.p)); diff != "" {
				t.Errorf("percentile(%v, %d) (-want +got):\n%s", tc.in, tc.p, diff)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	results := []*pisim.Result{
		{Serial: "5b154510", Address: "10.42.0.100", KernelLoaded: true, Bytes: 1000, Total: 3 * time.Second, DHCPTime: 100 * time.Millisecond},
		{Serial: "0000beef", Address: "10.42.0.101", KernelLoaded: true, Bytes: 1000, Total: 1 * time.Second, DHCPTime: 300 * time.Millisecond, Retries: 2},
		{Serial: "12345678", Address: "10.42.0.101", Verdict: "failed", Bytes: 500, DHCPTime: 200 * time.Millisecond,
			Error: "tftp: file not complete within TFTP_FILE_TIMEOUT (12345678/kernel8.img after 30s, 500 bytes)",
			Steps: []pisim.Step{{Op: "tftp-read", File: "12345678/kernel8.img", Result: "timeout"}}},
		{Serial: "cafef00d", Verdict: "failed: setup", Error: "no macvlan"},
	}
	var got Round
	got.summarize(results, 2*time.Second)
	want := Round{
		Nodes: 4, Finished: 2, P50: time.Second, P99: 3 * time.Second, Max: 3 * time.Second,
		DHCPP50: 200 * time.Millisecond, Bytes: 2500, Wall: 2 * time.Second, MBps: 2500 / 2.0 / 1e6,
		Timeouts: 1, TimeoutFiles: map[string]int{"kernel8.img": 1}, Retries: 2,
		Failures: map[string]int{
			"failed: tftp: file not complete within TFTP_FILE_TIMEOUT (kernel8.img)": 1,
			"failed: setup: no macvlan": 1,
		},
		Conflicts: []string{"10.42.0.101: 0000beef, 12345678"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
}

func TestDecodeResultsErrors(t *testing.T) {
	tests := map[string]string{
		"not json": "{",
		"empty":    "[]",
		"null pi":  "[null]",
		"object":   `{"serial":"x"}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeResults(strings.NewReader(in)); err == nil {
				t.Errorf("decodeResults(%q): no error", in)
			}
		})
	}
}

func TestTableRatios(t *testing.T) {
	rounds := []Round{
		{Server: serverRacklet, Round: 1, Nodes: 10, Finished: 10, P50: 2 * time.Second, P99: 4 * time.Second, Max: 4 * time.Second, MBps: 30, PeakRSSKiB: 20480},
		{Server: serverDnsmasq, Round: 1, Nodes: 10, Finished: 10, P50: 4 * time.Second, P99: 8 * time.Second, Max: 8 * time.Second, MBps: 15, PeakRSSKiB: 4096},
		{Server: serverRacklet, Round: 2, Nodes: 10, Finished: 9, P50: 3 * time.Second, P99: 5 * time.Second, Max: 6 * time.Second, MBps: 20, PeakRSSKiB: 30720},
		{Server: serverDnsmasq, Round: 2, Nodes: 10, Finished: 10, P50: 6 * time.Second, P99: 9 * time.Second, Max: 9 * time.Second, MBps: 10, PeakRSSKiB: 4096},
		{Server: serverTFTPD, Round: 1, Nodes: 10, Finished: 10, P50: 4 * time.Second, P99: 10 * time.Second, Max: 10 * time.Second, MBps: 16,
			ProbeP99: 12 * time.Millisecond, ProbeLost: 1, IdleProbeP99: 3 * time.Millisecond},
	}
	var b bytes.Buffer
	if err := writeTable(&b, rounds); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var got []string
	for _, l := range lines {
		got = append(got, strings.Join(strings.Fields(l), " "))
	}
	// Medians of two are the lower value.
	want := []string{
		"server rounds finished timeouts p50 p99 max MB/s peak RSS MiB idle RSS MiB server CPU s client CPU s DHCP p99 (lost) idle DHCP p99",
		"racklet-boot 2 9/10 0 2.00s 4.00s 4.00s 20.0 20.0 0.0 0.00 0.00 - -",
		"dnsmasq 2 10/10 0 4.00s 8.00s 8.00s 10.0 4.0 0.0 0.00 0.00 - -",
		"tftpd-hpa 1 10/10 0 4.00s 10.00s 10.00s 16.0 0.0 0.0 0.00 0.00 12.0ms (1) 3.0ms",
		"ratio racklet/dnsmasq (10 nodes) 0.50 0.50 0.50 2.00 5.00 -",
		"ratio racklet/tftpd-hpa (10 nodes) 0.50 0.40 0.40 1.25 -",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestMixedRackMatchesSimulator(t *testing.T) {
	pis, err := mixedRack(4, 1)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range pis {
		got = append(got, p.Model)
	}
	if diff := cmp.Diff([]int{4, 5, 4, 5}, got); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
	big, err := mixedRack(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range pis {
		if big[i].Serial != p.Serial {
			t.Errorf("pi %d: serial %08x in a rack of 4, %08x in a rack of 100: the smaller rack must be a prefix", i, p.Serial, big[i].Serial)
		}
	}
}

func FuzzReadRounds(f *testing.F) {
	f.Add(`{"server":"dnsmasq","round":1,"nodes":10,"finished":10,"p50_ns":1}` + "\n")
	f.Add("\n\n{}\n")
	f.Add(`{"server":1}`)
	f.Add(`{"timeout_files":{"kernel8.img":3}}` + "\n" + `[`)
	f.Fuzz(func(t *testing.T, in string) {
		rounds, err := readRounds(strings.NewReader(in))
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := writeTable(&b, rounds); err != nil {
			t.Fatalf("writeTable after a good read: %v", err)
		}
	})
}
