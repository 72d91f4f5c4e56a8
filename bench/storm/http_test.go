package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/pisim"
)

func imgStep(took time.Duration, result string) pisim.Step {
	return pisim.Step{Op: "http-get", File: "http://10.43.0.2:80/net_install/boot.img", Bytes: 64 << 20, Took: took, Result: result}
}

func TestHTTPSummarize(t *testing.T) {
	results := []*pisim.Result{
		{Serial: "00000001", Address: "10.43.1.1", KernelLoaded: true, Bytes: 64<<20 + 600, Total: 4 * time.Second, DHCPTime: time.Second,
			Steps: []pisim.Step{{Op: "http-get", File: "http://10.43.0.2:80/net_install/boot.sig", Bytes: 600, Took: time.Millisecond, Result: "ok"}, imgStep(3*time.Second, "ok")}},
		{Serial: "00000002", Address: "10.43.1.2", KernelLoaded: true, ModeTries: 2, Bytes: 64 << 20, Total: 17 * time.Second, DHCPTime: 2 * time.Second,
			Steps: []pisim.Step{imgStep(16*time.Second, "ok")}},
		{Serial: "00000003", Address: "10.43.1.3", Verdict: "failed: http", Error: "boot.sig refused: rsa2048 signature does not verify with the EEPROM key",
			Steps: []pisim.Step{imgStep(5*time.Second, "ok"), {Op: "verify", File: "boot.img", Result: "refused"}}},
		{Serial: "00000004", Verdict: "failed: dhcp", Error: "dhcp: no usable offer within the bootloader's timeout"},
	}
	var got HTTPRound
	got.summarize(results, 20*time.Second)
	want := HTTPRound{
		Nodes: 4, Finished: 2, FirstPass: 1, ImgOK: 3, UnderTarget: 2,
		ImgP50: 5 * time.Second, ImgP90: 16 * time.Second, ImgP99: 16 * time.Second, ImgMax: 16 * time.Second,
		TotalP50: 4 * time.Second, TotalMax: 17 * time.Second, DHCPP50: time.Second, // of 0, 1 and 2 s
		ImgBytes: 64 << 20, Bytes: 2*(64<<20) + 600, Wall: 20 * time.Second, MBps: float64(2*(64<<20)+600) / 20 / 1e6,
		Failures: map[string]int{
			"failed: http: boot.sig refused: rsa2048 signature does not verify with the EEPROM key": 1,
			"failed: dhcp: dhcp: no usable offer within the bootloader's timeout":                   1,
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("summarize (-want +got):\n%s", diff)
	}
}

func TestHTTPTable(t *testing.T) {
	in := `{"server":"racklet-boot","round":1,"nodes":100,"finished":100,"under_target":100,"img_p50_ns":8000000000,"img_p99_ns":12000000000,"img_max_ns":13000000000,"mbps":400,"server_cpu_s":2}
{"server":"nginx","round":1,"nodes":100,"finished":100,"under_target":100,"img_p50_ns":10000000000,"img_p99_ns":12000000000,"img_max_ns":13000000000,"mbps":320,"server_cpu_s":1}
{"server":"racklet-boot","round":1,"nodes":200,"finished":200,"under_target":150,"img_p50_ns":14000000000,"img_p99_ns":20000000000,"img_max_ns":21000000000,"mbps":410,"server_cpu_s":4}
`
	rounds, err := readHTTPRounds(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := writeHTTPTable(&b, rounds); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"ratio racklet/nginx    100", "0.80", "1.25", "2.00",
		"100 nodes: every boot.img < 15s in every round: met",
		"200 nodes: every boot.img < 15s in every round: NOT met (worst round: 200/200 finished, 150 under, slowest 21.00s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if _, err := readHTTPRounds(strings.NewReader("{\"nodes\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad line: %v", err)
	}
}
