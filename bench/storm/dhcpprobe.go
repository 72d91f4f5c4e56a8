package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/racklet/racklet-boot/pisim"
)

// probeResult is what `storm dhcpprobe` writes: one DISCOVER→OFFER time
// per probe that was answered, and how many were not.
type probeResult struct {
	Samples []time.Duration `json:"samples_ns"`
	Lost    int             `json:"lost"`
}

// runDHCPProbe plays one more Pi of the rack (index -nodes of the same
// mixed rack, listed in the server's config but not booted by the storm)
// that sends a DISCOVER every -interval on its own macvlan until SIGTERM,
// timing each OFFER: how responsive DHCP stays while TFTP is saturated.
func runDHCPProbe(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("dhcpprobe", flag.ContinueOnError)
	parent := fs.String("parent", "eth0", "interface the probe's macvlan sits on")
	nodes := fs.Int("nodes", 100, "Pis in the storm; the probe is the next one")
	seed := fs.Uint64("seed", 1, "the simulator's --seed")
	interval := fs.Duration("interval", 200*time.Millisecond, "gap between DISCOVERs")
	timeout := fs.Duration("timeout", 2*time.Second, "an OFFER later than this counts as lost")
	out := fs.String("out", "", "write the JSON result here when stopped (default: standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pis, err := mixedRack(*nodes+1, *seed)
	if err != nil {
		return err
	}
	p := pis[*nodes]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := (&pisim.MacvlanTransport{Parent: *parent, NamePrefix: "rkq"}).Open(ctx, p)
	if err != nil {
		return fmt.Errorf("dhcpprobe: %w", err)
	}
	defer l.Close()
	var res probeResult
	for xid := uint32(0x5eed0000); ctx.Err() == nil; xid++ {
		d, err := p.DiscoverLatency(l, xid, *timeout)
		switch {
		case err == nil:
			res.Samples = append(res.Samples, d)
		case errors.Is(err, os.ErrDeadlineExceeded):
			res.Lost++
		case ctx.Err() == nil:
			return fmt.Errorf("dhcpprobe: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(*interval):
		}
	}
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	return json.NewEncoder(w).Encode(&res)
}

// readProbe reads a dhcpprobe result.
func readProbe(path string) (probeResult, error) {
	var pr probeResult
	b, err := os.ReadFile(path)
	if err != nil {
		return pr, fmt.Errorf("read dhcp probe: %w", err)
	}
	if err := json.Unmarshal(b, &pr); err != nil {
		return pr, fmt.Errorf("dhcp probe %s: %w", path, err)
	}
	return pr, nil
}

// addProbe fills the round's DHCP probe figures from a dhcpprobe result
// taken during the storm.
func (r *Round) addProbe(path string) error {
	pr, err := readProbe(path)
	if err != nil {
		return err
	}
	r.ProbeN, r.ProbeLost = len(pr.Samples), pr.Lost
	r.ProbeP50, r.ProbeP99 = percentile(pr.Samples, 50), percentile(pr.Samples, 99)
	return nil
}

// addIdleProbe fills the DHCP p99 of the same server just before the storm.
func (r *Round) addIdleProbe(path string) error {
	pr, err := readProbe(path)
	if err != nil {
		return err
	}
	r.IdleProbeP99 = percentile(pr.Samples, 99)
	return nil
}
