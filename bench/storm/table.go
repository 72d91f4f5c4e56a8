package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/racklet/racklet-boot/pisim"
)

// Server names as run.sh passes them; ratios are racklet-boot over dnsmasq.
const (
	serverRacklet = "racklet-boot"
	serverDnsmasq = "dnsmasq"
	serverImage   = "racklet-image" // racklet-boot serving the files from a signed OCI image
)

// mixedRack returns the Pis `racklet-boot simulate --kind mixed` boots:
// Pi 4s from seed and Pi 5s from seed+1, alternating, Pi 4 first.
func mixedRack(n int, seed uint64) ([]*pisim.Pi, error) {
	if n < 1 || n > 1000 {
		return nil, fmt.Errorf("-nodes %d: want 1 to 1000", n)
	}
	return pisim.NewMixedRack(n, seed)
}

// median returns the median of the values of f over rounds (the lower
// middle one for an even count, so it is always a measured value).
func median[R any, T int | int64 | float64 | time.Duration](rounds []R, f func(R) T) T {
	if len(rounds) == 0 {
		return 0
	}
	v := make([]T, len(rounds))
	for i, r := range rounds {
		v[i] = f(r)
	}
	slices.Sort(v)
	return v[(len(v)-1)/2]
}

// medianRow is the median figures of one server at one node count.
type medianRow struct {
	server       string
	nodes, count int
	finished     int
	timeouts     int
	p50, p99, mx time.Duration
	mbps         float64
	peak, idle   int64
	cpu          float64
	clientCPU    float64
}

func medians(server string, nodes int, rs []Round) medianRow {
	return medianRow{
		server: server, nodes: nodes, count: len(rs),
		finished:  median(rs, func(r Round) int { return r.Finished }),
		timeouts:  median(rs, func(r Round) int { return r.Timeouts }),
		p50:       median(rs, func(r Round) time.Duration { return r.P50 }),
		p99:       median(rs, func(r Round) time.Duration { return r.P99 }),
		mx:        median(rs, func(r Round) time.Duration { return r.Max }),
		mbps:      median(rs, func(r Round) float64 { return r.MBps }),
		peak:      median(rs, func(r Round) int64 { return r.PeakRSSKiB }),
		idle:      median(rs, func(r Round) int64 { return r.IdleRSSKiB }),
		cpu:       median(rs, func(r Round) float64 { return r.ServerCPUSec }),
		clientCPU: median(rs, func(r Round) float64 { return r.ClientCPUSec }),
	}
}

// writeTable prints, per node count, one line of medians per server and
// the racklet-boot/dnsmasq ratios, and image/dir when racklet-boot also
// served the files from a signed OCI image.
func writeTable(w io.Writer, rounds []Round) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\trounds\tfinished\ttimeouts\tp50\tp99\tmax\tMB/s\tpeak RSS MiB\tidle RSS MiB\tserver CPU s\tclient CPU s\t")
	var nodeCounts []int
	for _, r := range rounds {
		if !slices.Contains(nodeCounts, r.Nodes) {
			nodeCounts = append(nodeCounts, r.Nodes)
		}
	}
	for _, n := range nodeCounts {
		rows := map[string]medianRow{}
		var order []string
		for _, r := range rounds {
			if r.Nodes == n && !slices.Contains(order, r.Server) {
				order = append(order, r.Server)
			}
		}
		for _, s := range order {
			var rs []Round
			for _, r := range rounds {
				if r.Nodes == n && r.Server == s {
					rs = append(rs, r)
				}
			}
			m := medians(s, n, rs)
			rows[s] = m
			fmt.Fprintf(tw, "%s\t%d\t%d/%d\t%d\t%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t\n", s, m.count, m.finished, n, m.timeouts,
				secs(m.p50), secs(m.p99), secs(m.mx), m.mbps, float64(m.peak)/1024, float64(m.idle)/1024, m.cpu, m.clientCPU)
		}
		rb, okR := rows[serverRacklet]
		dm, okD := rows[serverDnsmasq]
		if okR && okD {
			fmt.Fprintf(tw, "ratio racklet/dnsmasq (%d nodes)\t\t\t\t%s\t%s\t%s\t%s\t%s\t\t%s\t\n", n,
				ratio(float64(rb.p50), float64(dm.p50)), ratio(float64(rb.p99), float64(dm.p99)), ratio(float64(rb.mx), float64(dm.mx)),
				ratio(rb.mbps, dm.mbps), ratio(float64(rb.peak), float64(dm.peak)), ratio(rb.cpu, dm.cpu))
		}
		if im, okI := rows[serverImage]; okR && okI {
			fmt.Fprintf(tw, "ratio image/dir (%d nodes)\t\t\t\t%s\t%s\t%s\t%s\t%s\t\t%s\t\n", n,
				ratio(float64(im.p50), float64(rb.p50)), ratio(float64(im.p99), float64(rb.p99)), ratio(float64(im.mx), float64(rb.mx)),
				ratio(im.mbps, rb.mbps), ratio(float64(im.peak), float64(rb.peak)), ratio(im.cpu, rb.cpu))
		}
	}
	return tw.Flush()
}

// secs renders a time-to-kernel; "-" when no Pi loaded its kernel.
func secs(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func ratio(a, b float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", a/b)
}
