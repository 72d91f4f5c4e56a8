package store

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// benchLease returns a distinct lease for each i.
func benchLease(i int64) Lease {
	return Lease{MAC: fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i)), Addr: addr1, State: "bound"}
}

// delays are the batch delays compared: ours (the default) and bbolt's.
var delays = []time.Duration{DefaultBatchDelay, 10 * time.Millisecond}

// BenchmarkPutLeaseParallel is a cold-rack storm: 16 writers per CPU each
// storing leases. It reports ns per durable lease and writes per commit (the
// group commit at work), for our batch delay and bbolt's default.
func BenchmarkPutLeaseParallel(b *testing.B) {
	for _, d := range delays {
		b.Run("delay="+d.String(), func(b *testing.B) {
			s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), BoltOptions{BatchDelay: d})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.PutLease(context.Background(), benchLease(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := s.Stats()
			b.ReportMetric(float64(st.Writes)/float64(max(st.Commits, 1)), "writes/commit")
		})
	}
}

// BenchmarkPutLeaseParallelUpdate is the baseline without group commit: the
// same storm with one bbolt Update (one fsync) per lease.
func BenchmarkPutLeaseParallelUpdate(b *testing.B) {
	s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l := benchLease(n.Add(1))
			data, _ := json.Marshal(l)
			err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLeases).Put([]byte(l.MAC), data) })
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPutLease is one writer alone: the latency a lone DHCP ACK pays
// (one fsync plus the batch delay).
func BenchmarkPutLease(b *testing.B) {
	for _, d := range delays {
		b.Run("delay="+d.String(), func(b *testing.B) {
			s, err := OpenBolt(filepath.Join(b.TempDir(), "state.db"), BoltOptions{BatchDelay: d})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range b.N {
				if err := s.PutLease(context.Background(), benchLease(int64(i))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
