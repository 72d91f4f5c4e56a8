package rollout

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRollout1000 takes 1,000 simulated nodes from v1 to v2 in batches
// of 10% on a bbolt state file, and reports the CPU the whole process spent
// per node transition (controller, A/B machine, store and the simulator
// together: an upper bound on the controller's), the transitions per store
// commit, the state file's size and how much the rollout grew it. "parallel" sends each round's
// health reports concurrently, as a rack's agents do, so their journal
// writes share commits; "serial" is the same rollout with one report at a
// time: the ratio of their commits is what group commit saves.
func BenchmarkRollout1000(b *testing.B) {
	for _, mode := range []string{"parallel", "serial"} {
		b.Run(mode, func(b *testing.B) {
			var cpu time.Duration
			var trans, commits, grown, size int64
			for range b.N {
				b.StopTimer()
				path := filepath.Join(b.TempDir(), "state.db")
				db, err := store.OpenBolt(path, store.BoltOptions{})
				if err != nil {
					b.Fatal(err)
				}
				f := newFleet(b, 1000, db)
				f.parallel = mode == "parallel"
				p := Policy{MaxUnavailable: 100, HealthTimeout: 5 * time.Minute, Attempts: 3, OnFailure: "halt"}
				f.apply(v1, p)
				before, _ := os.Stat(path)
				w0, t0 := db.Stats(), f.m.Transitions()
				b.StartTimer()
				c0 := cpuTime()
				f.apply(v2, p)
				st := f.run(1000, PhaseDone)
				cpu += cpuTime() - c0
				b.StopTimer()
				if st.AtTarget != 1000 {
					b.Fatalf("%d of 1000 at v2", st.AtTarget)
				}
				after, _ := os.Stat(path)
				w := db.Stats()
				trans += f.m.Transitions() - t0
				commits += w.Commits - w0.Commits
				grown += after.Size() - before.Size()
				size += after.Size()
				db.Close()
			}
			n := float64(b.N)
			b.ReportMetric(float64(cpu.Microseconds())/float64(trans), "cpu-µs/transition")
			b.ReportMetric(float64(trans)/n, "transitions/op")
			b.ReportMetric(float64(commits)/n, "commits/op")
			b.ReportMetric(float64(trans)/float64(max(commits, 1)), "transitions/commit")
			b.ReportMetric(float64(size)/n/1024, "state-KiB/op")
			b.ReportMetric(float64(grown)/n/1024, "state-KiB-grown/op")
		})
	}
}
