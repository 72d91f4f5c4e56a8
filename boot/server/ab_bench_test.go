package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"

	"github.com/racklet/racklet-boot/ab/rollout"
	"github.com/racklet/racklet-boot/image/imagetest/signed"
)

// BenchmarkRollout1000 moves 1,000 simulated nodes from v1 to v2 through a
// real server on loopback, in batches of 100: each node power-cycled by its
// HAT simulator (the server's Options.PowerCycle asks it), its agent
// simulator reporting healthy over HTTP from the node's own address and
// committing on its HAT. It reports the A/B loop's own CPU (its thread:
// ending attempts, stepping the rollout, acknowledging power cycles) per
// node transition, the whole process's CPU per transition (server, 1,000
// agents and HATs, bbolt), and how much the state file grew.
//
//	go test -run '^$' -bench Rollout1000 -benchtime 1x ./boot/server
func BenchmarkRollout1000(b *testing.B) {
	const n = 1000
	for range b.N {
		dir := b.TempDir()
		im := signed.Layout(b, dir, "v1", "v2")
		hats := dir
		if d, err := os.MkdirTemp("/dev/shm", "racklet-bench-hats-"); err == nil { // HAT flash writes off the disk under test
			hats = d
			b.Cleanup(func() { os.RemoveAll(d) })
		}
		sims := newSimRack(b, hats, n)
		policy := "{maxUnavailable: 10%, healthTimeout: 10m, attempts: 2}"
		s, err := New(parseConfig(b, dir, abRack(dir, im, n, "v1", policy)),
			Options{HTTPAddr: "127.0.0.1:0", TFTPAddr: "127.0.0.1:0", BMCAddr: "127.0.0.1:0", Neighbours: nobody{}, PowerCycle: sims.powerCycle})
		if err != nil {
			b.Fatal(err)
		}
		serve(b, s)
		for _, node := range sims.nodes {
			node.Server = "http://" + s.Addrs().HTTP
		}
		waitPhase(b, s, "v1", rollout.PhaseDone, 2*time.Minute)
		state := filepath.Join(dir, "data", StateFile)
		size0 := fileSize(b, state)
		trans0, cpu0, proc0 := s.ab.m.Transitions(), counter(s.ab.cpu), processCPU()
		start := time.Now()

		if err := s.Reload(b.Context(), parseConfig(b, dir, abRack(dir, im, n, "v2", policy))); err != nil {
			b.Fatal(err)
		}
		st := waitPhase(b, s, "v2", rollout.PhaseDone, 10*time.Minute)
		wall := time.Since(start)
		trans := float64(s.ab.m.Transitions() - trans0)
		ctl := (counter(s.ab.cpu) - cpu0) / trans
		proc := (processCPU() - proc0).Seconds() / trans
		grew := fileSize(b, state) - size0
		if st.AtTarget != n || sims.most > n/10 {
			b.Fatalf("%d of %d on v2, at most %d down", st.AtTarget, n, sims.most)
		}
		sims.wg.Wait()
		if len(sims.errs) > 0 {
			b.Fatalf("%d simulated boots failed, first: %v", len(sims.errs), sims.errs[0])
		}
		b.ReportMetric(ctl*1e6, "ctl-µs/transition")
		b.ReportMetric(proc*1e6, "proc-µs/transition")
		b.ReportMetric(trans, "transitions")
		b.ReportMetric(float64(grew), "state-bytes-grown")
		b.Logf("1,000 nodes v1 -> v2 in %s: %.0f transitions, A/B loop CPU %.1f µs per transition, whole process %.0f µs, state file %d KiB (+%d bytes)",
			wall.Round(time.Second), trans, ctl*1e6, proc*1e6, fileSize(b, state)>>10, grew)
	}
}

// counter reads a counter's value.
func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if c.Write(&m) != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

func fileSize(t testing.TB, p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// processCPU is this process's CPU time so far.
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
