package agent

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// BenchmarkFetchVsCurl fetches one 256 MiB file from a loopback HTTP server
// with the agent's Fetch (hashing while it streams) and with curl, rounds
// alternating, and reports the median throughput ratio agent/curl
// (issue 11 asks for at least 0.9). Run:
//
//	go test -run XXX -bench FetchVsCurl -benchtime 1x ./agent
func BenchmarkFetchVsCurl(b *testing.B) {
	curl := testutil.NeedTool(b, "curl")
	dir := b.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "racklet-fetch-")
		if err == nil {
			dir = d
			defer os.RemoveAll(d)
		}
	}
	src := filepath.Join(dir, "root.squashfs")
	data := make([]byte, 256<<20)
	rand.Read(data)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	data = nil
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	url := srv.URL + "/root.squashfs"
	dst := filepath.Join(dir, "out")
	var agentT, curlT []time.Duration
	b.ResetTimer()
	for range b.N {
		for round := range 5 {
			runs := []func(){
				func() {
					start := time.Now()
					if _, err := Fetch(b.Context(), newHTTPClient(), url, dst, digest, FetchOptions{}); err != nil {
						b.Fatal(err)
					}
					agentT = append(agentT, time.Since(start))
				},
				func() {
					start := time.Now()
					if out, err := exec.Command(curl, "-sf", "-o", dst, url).CombinedOutput(); err != nil {
						b.Fatalf("curl: %v: %s", err, out)
					}
					curlT = append(curlT, time.Since(start))
				},
			}
			if round%2 == 1 {
				slices.Reverse(runs)
			}
			for _, run := range runs {
				os.Remove(dst)
				run()
			}
		}
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	a, c := med(agentT), med(curlT)
	mb := float64(256 << 20 >> 20)
	b.ReportMetric(mb/a.Seconds(), "agent-MiB/s")
	b.ReportMetric(mb/c.Seconds(), "curl-MiB/s")
	b.ReportMetric(c.Seconds()/a.Seconds(), "agent/curl")
}
