package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/racklet/racklet-boot/pisim"
)

// The HTTP-boot storm (http.sh): every simulated Pi GETs boot.sig and the
// signed boot.img from one URL. Its figure is each node's boot.img time:
// the target is every one under imgTarget at 100 nodes.

// imgTarget is the per-node boot.img time the storm is held to.
const imgTarget = 15 * time.Second

// serverNginx is the peer: dnsmasq for DHCP and nginx serving the same
// boot.img and boot.sig as static files.
const serverNginx = "nginx"

// HTTPRound holds the figures of one HTTP-boot storm against one server.
type HTTPRound struct {
	Server   string `json:"server"`
	Round    int    `json:"round"`
	Nodes    int    `json:"nodes"`
	Finished int    `json:"finished"` // Pis that booted a verified boot.img
	// FirstPass counts the finished Pis that needed no restart of
	// BOOT_ORDER (a failed attempt, then "f", then another).
	FirstPass int `json:"first_pass"`
	// ImgOK counts Pis whose boot.img arrived whole; UnderTarget those of
	// them that took less than imgTarget.
	ImgOK       int `json:"img_ok"`
	UnderTarget int `json:"under_target"`
	// Per-node boot.img GET time (request to last byte), nearest rank.
	ImgP50 time.Duration `json:"img_p50_ns"`
	ImgP90 time.Duration `json:"img_p90_ns"`
	ImgP99 time.Duration `json:"img_p99_ns"`
	ImgMax time.Duration `json:"img_max_ns"`
	// Power-on to verified boot.img over the finished Pis.
	TotalP50 time.Duration `json:"total_p50_ns"`
	TotalMax time.Duration `json:"total_max_ns"`
	DHCPP50  time.Duration `json:"dhcp_p50_ns"`
	ImgBytes int64         `json:"img_bytes"` // of one boot.img
	Bytes    int64         `json:"bytes"`     // all Pis, boot.sig included
	Wall     time.Duration `json:"wall_ns"`
	MBps     float64       `json:"mbps"` // Bytes over Wall, 10^6 bytes per second
	// Failures counts the Pis that did not boot, by error.
	Failures     map[string]int `json:"failures,omitempty"`
	PeakRSSKiB   int64          `json:"peak_rss_kib"`
	ServerCPUSec float64        `json:"server_cpu_s"`
	ClientCPUSec float64        `json:"client_cpu_s"`
}

// summarize fills the round from the simulator's results.
func (r *HTTPRound) summarize(results []*pisim.Result, wall time.Duration) {
	r.Nodes, r.Wall = len(results), wall
	var img, total, dhcp []time.Duration
	for _, res := range results {
		r.Bytes += res.Bytes
		if res.Address != "" {
			dhcp = append(dhcp, res.DHCPTime)
		}
		if res.KernelLoaded {
			r.Finished++
			if res.ModeTries <= 1 {
				r.FirstPass++
			}
			total = append(total, res.Total)
		} else {
			if r.Failures == nil {
				r.Failures = map[string]int{}
			}
			r.Failures[failureKey(res)]++
		}
		for _, s := range res.Steps {
			if s.Op == "http-get" && strings.HasSuffix(s.File, "/boot.img") && s.Result == "ok" {
				img = append(img, s.Took)
				r.ImgOK++
				r.ImgBytes = s.Bytes
				if s.Took < imgTarget {
					r.UnderTarget++
				}
			}
		}
	}
	r.ImgP50, r.ImgP90, r.ImgP99, r.ImgMax = percentile(img, 50), percentile(img, 90), percentile(img, 99), percentile(img, 100)
	r.TotalP50, r.TotalMax = percentile(total, 50), percentile(total, 100)
	r.DHCPP50 = percentile(dhcp, 50)
	if wall > 0 {
		r.MBps = float64(r.Bytes) / wall.Seconds() / 1e6
	}
}

func runHTTPSummarize(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("http-summarize", flag.ContinueOnError)
	var r HTTPRound
	fs.StringVar(&r.Server, "server", "", "server name for the table")
	fs.IntVar(&r.Round, "round", 0, "round number")
	wall := fs.Int64("wall-ns", 0, "wall time of the whole storm, ns")
	fs.Int64Var(&r.PeakRSSKiB, "peak-rss-kib", 0, "server VmHWM after the storm, KiB")
	fs.Float64Var(&r.ServerCPUSec, "server-cpu-s", 0, "server user+system CPU seconds during the storm")
	fs.Float64Var(&r.ClientCPUSec, "client-cpu-s", 0, "simulator user+system CPU seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || r.Server == "" {
		return errors.New("http-summarize: want -server NAME and one results file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("open simulator results: %w", err)
	}
	defer f.Close()
	results, err := decodeResults(f)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	r.summarize(results, time.Duration(*wall))
	b, err := json.Marshal(&r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// readHTTPRounds reads JSON lines written by http-summarize.
func readHTTPRounds(r io.Reader) ([]HTTPRound, error) {
	var rounds []HTTPRound
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rd HTTPRound
		if err := json.Unmarshal(sc.Bytes(), &rd); err != nil {
			return nil, fmt.Errorf("rounds line %d: %w", line, err)
		}
		rounds = append(rounds, rd)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read rounds: %w", err)
	}
	slices.SortStableFunc(rounds, func(a, b HTTPRound) int { return cmp.Compare(a.Nodes, b.Nodes) })
	return rounds, nil
}

func runHTTPTable(args []string, w io.Writer) error {
	if len(args) != 1 {
		return errors.New("http-table: want one rounds file (JSON lines from http-summarize)")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("open rounds: %w", err)
	}
	defer f.Close()
	rounds, err := readHTTPRounds(f)
	if err != nil {
		return err
	}
	return writeHTTPTable(w, rounds)
}

// writeHTTPTable prints per node count one line of medians per server, the
// racklet-boot/nginx ratios, and whether every boot.img arrived in time.
func writeHTTPTable(w io.Writer, rounds []HTTPRound) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tnodes\trounds\tfinished\t1st pass\timg<15s\timg p50\timg p90\timg p99\timg max\tboot p50\tMB/s\tpeak RSS MiB\tserver CPU s\tclient CPU s\t")
	type row struct {
		p50, p99, mx time.Duration
		mbps, cpu    float64
	}
	var counts []int
	for _, r := range rounds {
		if !slices.Contains(counts, r.Nodes) {
			counts = append(counts, r.Nodes)
		}
	}
	var verdicts []string
	for _, n := range counts {
		var servers []string
		for _, r := range rounds {
			if r.Nodes == n && !slices.Contains(servers, r.Server) {
				servers = append(servers, r.Server)
			}
		}
		rows := map[string]row{}
		for _, s := range servers {
			var rs []HTTPRound
			for _, r := range rounds {
				if r.Nodes == n && r.Server == s {
					rs = append(rs, r)
				}
			}
			m := row{
				p50:  median(rs, func(r HTTPRound) time.Duration { return r.ImgP50 }),
				p99:  median(rs, func(r HTTPRound) time.Duration { return r.ImgP99 }),
				mx:   median(rs, func(r HTTPRound) time.Duration { return r.ImgMax }),
				mbps: median(rs, func(r HTTPRound) float64 { return r.MBps }),
				cpu:  median(rs, func(r HTTPRound) float64 { return r.ServerCPUSec }),
			}
			rows[s] = m
			fin := median(rs, func(r HTTPRound) int { return r.Finished })
			under := median(rs, func(r HTTPRound) int { return r.UnderTarget })
			first := median(rs, func(r HTTPRound) int { return r.FirstPass })
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d/%d\t%d\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%.2f\t%.2f\t\n", s, n, len(rs), fin, n, first, under, n,
				secs(m.p50), secs(median(rs, func(r HTTPRound) time.Duration { return r.ImgP90 })), secs(m.p99), secs(m.mx),
				secs(median(rs, func(r HTTPRound) time.Duration { return r.TotalP50 })), m.mbps,
				float64(median(rs, func(r HTTPRound) int64 { return r.PeakRSSKiB }))/1024, m.cpu,
				median(rs, func(r HTTPRound) float64 { return r.ClientCPUSec }))
			if s == serverRacklet {
				worst := slices.MaxFunc(rs, func(a, b HTTPRound) int { return cmp.Compare(a.ImgMax, b.ImgMax) })
				ok := "met"
				if worst.Finished < n || worst.UnderTarget < n {
					ok = "NOT met"
				}
				verdicts = append(verdicts, fmt.Sprintf("%d nodes: every boot.img < %s in every round: %s (worst round: %d/%d finished, %d under, slowest %s)",
					n, imgTarget, ok, worst.Finished, n, worst.UnderTarget, secs(worst.ImgMax)))
			}
		}
		rb, okR := rows[serverRacklet]
		ng, okN := rows[serverNginx]
		if okR && okN {
			fmt.Fprintf(tw, "ratio racklet/nginx\t%d\t\t\t\t\t%s\t\t%s\t%s\t\t%s\t\t%s\t\t\n", n,
				ratio(float64(rb.p50), float64(ng.p50)), ratio(float64(rb.p99), float64(ng.p99)), ratio(float64(rb.mx), float64(ng.mx)),
				ratio(rb.mbps, ng.mbps), ratio(rb.cpu, ng.cpu))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, v := range verdicts {
		fmt.Fprintln(w, v)
	}
	return nil
}
