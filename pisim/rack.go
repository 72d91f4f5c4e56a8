package pisim

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Rack boots many simulated Pis at once, each on its own link.
type Rack struct {
	// Transport attaches the Pis; RunRack uses a MacvlanTransport.
	Transport Transport
	// Pis are the boards to boot.
	Pis []*Pi
	// Concurrency bounds how many Pis boot at the same time; <= 0 means all.
	Concurrency int
	// Stagger delays each Pi's start by this much after the previous one,
	// as racks powered on by one switch never start in the same microsecond.
	Stagger time.Duration
	// Logger receives one line per finished Pi; nil discards.
	Logger *slog.Logger
}

// Run boots every Pi and returns their results in the order of r.Pis. A Pi
// that could not even start (bad config, no macvlan) gets a Result with
// the verdict "failed: setup".
func (r *Rack) Run(ctx context.Context) []*Result {
	n := r.Concurrency
	if n <= 0 || n > len(r.Pis) {
		n = max(len(r.Pis), 1)
	}
	sem := make(chan struct{}, n)
	results := make([]*Result, len(r.Pis))
	var wg sync.WaitGroup
	for i, p := range r.Pis {
		if i > 0 && r.Stagger > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(r.Stagger):
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = setupFailure(p, ctx.Err())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := p.BootOn(ctx, r.Transport)
			if err != nil {
				res = setupFailure(p, err)
			}
			results[i] = res
			if r.Logger != nil {
				r.Logger.Info("pi finished", "serial", res.Serial, "verdict", res.Verdict, "took", res.Total, "err", res.Error)
			}
		}()
	}
	wg.Wait()
	return results
}

// setupFailure is the Result of a Pi whose boot could not start.
func setupFailure(p *Pi, err error) *Result {
	return &Result{Serial: p.Name(), MAC: p.MAC.String(), Model: p.Model, Prefix: p.prefix(),
		Verdict: "failed: setup", Error: err.Error()}
}

// RunRack boots pis on macvlans of iface, at most concurrency at a time,
// and returns every Pi's result in order.
func RunRack(ctx context.Context, iface string, pis []*Pi, concurrency int) []*Result {
	r := &Rack{Transport: &MacvlanTransport{Parent: iface}, Pis: pis, Concurrency: concurrency}
	return r.Run(ctx)
}

// Summary counts the results by outcome.
type Summary struct {
	Pis       int           `json:"pis"`
	Booted    int           `json:"booted"`
	Failed    int           `json:"failed"`
	Bytes     int64         `json:"bytes"`
	Slowest   time.Duration `json:"slowest_ns"`
	MedianDur time.Duration `json:"median_ns"`
	// Conflicts lists every address leased to more than one Pi, as
	// "ADDR: SERIAL, SERIAL": a server bug a real rack would suffer from.
	Conflicts []string `json:"conflicts,omitempty"`
}

// String says how the rack did, in one line.
func (s Summary) String() string {
	return fmt.Sprintf("%d of %d Pis loaded their kernel; median boot %s, slowest %s; %.1f MiB over TFTP",
		s.Booted, s.Pis, s.MedianDur.Round(time.Millisecond), s.Slowest.Round(time.Millisecond), float64(s.Bytes)/(1<<20))
}

// Summarize counts results; the durations cover booted Pis only.
func Summarize(results []*Result) Summary {
	s := Summary{Pis: len(results)}
	var durs []time.Duration
	byAddr := map[string][]string{}
	for _, r := range results {
		if r.Address != "" {
			byAddr[r.Address] = append(byAddr[r.Address], r.Serial)
		}
		s.Bytes += r.Bytes
		if r.KernelLoaded {
			s.Booted++
			durs = append(durs, r.Total)
			s.Slowest = max(s.Slowest, r.Total)
		} else {
			s.Failed++
		}
	}
	for addr, serials := range byAddr {
		if len(serials) > 1 {
			s.Conflicts = append(s.Conflicts, addr+": "+strings.Join(serials, ", "))
		}
	}
	slices.Sort(s.Conflicts)
	if len(durs) > 0 {
		slices.Sort(durs)
		s.MedianDur = durs[len(durs)/2]
	}
	return s
}
