package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/pisim"
)

// Round holds the figures of one storm against one server.
type Round struct {
	Server   string `json:"server"`
	Round    int    `json:"round"`
	Nodes    int    `json:"nodes"`
	Finished int    `json:"finished"` // Pis whose kernel loaded
	// Time-to-kernel (total_ns) over the finished Pis, nearest rank.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// DHCPP50 is the median DHCP time over the Pis that got an address.
	DHCPP50 time.Duration `json:"dhcp_p50_ns"`
	Bytes   int64         `json:"bytes"`   // TFTP payload of all Pis, probes included
	Wall    time.Duration `json:"wall_ns"` // the simulate command, start to exit
	// MBps is Bytes over Wall, in 10^6 bytes per second.
	MBps float64 `json:"mbps"`
	// Timeouts counts reads that missed the firmware's 30 s per-file
	// timeout; TimeoutFiles counts them by file name without the prefix.
	Timeouts     int            `json:"timeouts"`
	TimeoutFiles map[string]int `json:"timeout_files,omitempty"`
	// Failures counts the Pis that did not load a kernel, by error.
	Failures  map[string]int `json:"failures,omitempty"`
	Retries   int            `json:"retries"`   // TFTP retransmissions by the Pis
	Conflicts []string       `json:"conflicts"` // addresses leased twice
	// Server process figures, from /proc/PID/status and /proc/PID/stat.
	IdleRSSKiB   int64   `json:"idle_rss_kib"`
	PeakRSSKiB   int64   `json:"peak_rss_kib"`
	ServerCPUSec float64 `json:"server_cpu_s"`
	// ClientCPUSec is the simulator's user+system CPU seconds: server and
	// clients share the machine's cores.
	ClientCPUSec float64 `json:"client_cpu_s"`
	// DHCP probe during the storm (storm dhcpprobe): DISCOVER→OFFER
	// percentiles over ProbeN answered probes, ProbeLost unanswered.
	ProbeN    int           `json:"dhcp_probe_n,omitempty"`
	ProbeLost int           `json:"dhcp_probe_lost,omitempty"`
	ProbeP50  time.Duration `json:"dhcp_probe_p50_ns,omitempty"`
	ProbeP99  time.Duration `json:"dhcp_probe_p99_ns,omitempty"`
	// IdleProbeP99 is the same probe's p99 for 10 s before the storm, on
	// the same server and machine: what the machine's load alone costs.
	IdleProbeP99 time.Duration `json:"dhcp_idle_probe_p99_ns,omitempty"`
}

// decodeResults reads the simulator's `-o json` output.
func decodeResults(r io.Reader) ([]*pisim.Result, error) {
	var results []*pisim.Result
	if err := json.NewDecoder(r).Decode(&results); err != nil {
		return nil, fmt.Errorf("decode simulator results: %w", err)
	}
	if len(results) == 0 {
		return nil, errors.New("simulator results hold no Pi")
	}
	for i, res := range results {
		if res == nil {
			return nil, fmt.Errorf("simulator result %d is null", i)
		}
	}
	return results, nil
}

// summarize fills the round's figures from the simulator's results.
func (r *Round) summarize(results []*pisim.Result, wall time.Duration) {
	r.Nodes = len(results)
	r.Wall = wall
	var ttk, dhcp []time.Duration
	for _, res := range results {
		r.Bytes += res.Bytes
		r.Retries += res.Retries
		if res.Address != "" {
			dhcp = append(dhcp, res.DHCPTime)
		}
		if res.KernelLoaded {
			r.Finished++
			ttk = append(ttk, res.Total)
		} else {
			if r.Failures == nil {
				r.Failures = map[string]int{}
			}
			r.Failures[failureKey(res)]++
		}
		for _, s := range res.Steps {
			if s.Result != "timeout" {
				continue
			}
			r.Timeouts++
			if r.TimeoutFiles == nil {
				r.TimeoutFiles = map[string]int{}
			}
			r.TimeoutFiles[stripPrefix(s.File)]++
		}
	}
	r.Conflicts = pisim.Summarize(results).Conflicts
	r.P50, r.P99, r.Max = percentile(ttk, 50), percentile(ttk, 99), percentile(ttk, 100)
	r.DHCPP50 = percentile(dhcp, 50)
	if wall > 0 {
		r.MBps = float64(r.Bytes) / wall.Seconds() / 1e6
	}
}

// failureKey names why a Pi failed, short enough to count by: its verdict
// and error with the serial prefix and byte counts removed.
func failureKey(res *pisim.Result) string {
	k := res.Verdict
	if res.Error != "" {
		k += ": " + res.Error
	}
	k = strings.ReplaceAll(k, res.Serial+"/", "")
	if i := strings.Index(k, " after "); i > 0 {
		k = k[:i] + ")"
	}
	if len(k) > 120 {
		k = k[:120]
	}
	return k
}

// stripPrefix drops a TFTP prefix directory ("5b154510/kernel8.img").
func stripPrefix(file string) string {
	if i := strings.IndexByte(file, '/'); i == 8 {
		return file[i+1:]
	}
	return file
}

// percentile returns the nearest-rank p-th percentile (0 for no samples).
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100 // ceil(p/100 * n)
	return s[max(rank, 1)-1]
}

// writeRound writes the round as one JSON line.
func writeRound(w io.Writer, r *Round) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// readRounds reads JSON lines written by writeRound.
func readRounds(r io.Reader) ([]Round, error) {
	var rounds []Round
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rd Round
		if err := json.Unmarshal(sc.Bytes(), &rd); err != nil {
			return nil, fmt.Errorf("rounds line %d: %w", line, err)
		}
		rounds = append(rounds, rd)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read rounds: %w", err)
	}
	sort.SliceStable(rounds, func(i, j int) bool { return rounds[i].Nodes < rounds[j].Nodes })
	return rounds, nil
}
