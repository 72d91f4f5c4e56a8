package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// childEnv switches the test binary into the lease-writing child of TestKill9.
const childEnv = "RACKLET_STORE_KILL9_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(killChild(path))
	}
	os.Exit(m.Run())
}

// killChild writes leases from several goroutines forever, printing each MAC
// only after PutLease returned, until the parent kills it.
func killChild(path string) int {
	b, err := OpenBolt(path, BoltOptions{OpenTimeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	round := os.Getenv(childEnv + "_ROUND")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				mac := fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", round[0], g, i>>16&0xff, i>>8&0xff, i&0xff)
				err := b.PutLease(context.Background(), Lease{MAC: mac, Addr: netip.AddrFrom4([4]byte{10, byte(g), byte(i >> 8), byte(i)}), State: "bound"})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				mu.Lock()
				out.WriteString(mac + "\n")
				out.Flush() // one write(2) per line: atomic on a pipe
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 0
}

// TestKill9 kills a writing child with SIGKILL at a random moment and checks
// that every lease it reported as written is there when the file is reopened.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test skipped in -short mode")
	}
	path := filepath.Join(t.TempDir(), "state.db")
	total := 0
	for round := range 4 {
		printed := runAndKill(t, path, round)
		b, err := OpenBolt(path, BoltOptions{OpenTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("round %d: reopen after kill -9: %v", round, err)
		}
		checkConsistent(t, b)
		leases, err := b.Leases(context.Background())
		b.Close()
		if err != nil {
			t.Fatalf("round %d: read leases: %v", round, err)
		}
		have := make(map[string]bool, len(leases))
		for _, l := range leases {
			have[l.MAC] = true
		}
		for _, mac := range printed {
			if !have[mac] {
				t.Fatalf("round %d: lease %s was acknowledged before the kill but is missing", round, mac)
			}
		}
		total += len(printed)
		t.Logf("round %d: %d acknowledged leases survived kill -9 (%d in the file)", round, len(printed), len(leases))
	}
	if total == 0 {
		t.Fatal("the child never acknowledged a lease")
	}
}

// runAndKill starts the child, waits for its first acknowledged lease, kills
// it 50-300 ms later and returns every MAC it printed.
func runAndKill(t *testing.T, path string, round int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path, fmt.Sprintf("%s_ROUND=%c", childEnv, 'a'+round))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	var printed []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			printed = append(printed, sc.Text())
			if first {
				lines <- sc.Text()
				first = false
			}
		}
	}()
	select {
	case <-lines:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the child wrote no lease within 60 s")
	}
	time.Sleep(time.Duration(50+rand.IntN(251)) * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-done // the pipe closes when the child is gone
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, not by SIGKILL", err)
	}
	return printed
}

// checkConsistent runs bbolt's own consistency check over the file.
func checkConsistent(t *testing.T, b *Bolt) {
	t.Helper()
	err := b.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("database inconsistent after kill -9: %v", err)
	}
}
