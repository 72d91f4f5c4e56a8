package hatsim

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/racklet/racklet-boot/hatlink"
)

func client(t *testing.T, d *Device) *hatlink.Client {
	t.Helper()
	c, err := hatlink.NewClient(t.Context(), hatlink.Direct(d))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStatePersists: keys and counters survive a restart (a power-on);
// registers do not; the boot counter only grows.
func TestStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hat.json")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := client(t, d)
	if _, err := c.Extend(ctx, 0, [32]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.BootAttempt(ctx, hatlink.SlotB); err != nil {
		t.Fatal(err)
	}
	s1, _ := c.BootState(ctx)
	d2, err := Open(path, Options{Serial: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(d.Identity(), d2.Identity()); diff != "" {
		t.Errorf("identity changed across restart:\n%s", diff)
	}
	c2 := client(t, d2)
	s2, _ := c2.BootState(ctx)
	if s2.Counter != s1.Counter+1 || s2.Attempts != s1.Attempts {
		t.Errorf("after restart: %+v, want counter %d and attempts %v", s2, s1.Counter+1, s1.Attempts)
	}
	if r, _ := c2.Read(ctx, 1); r.Values[0] != [32]byte{} {
		t.Error("registers survived a restart")
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); err == nil {
		t.Error("Open accepted a corrupt state file (it must refuse, not make a new identity)")
	}
}

// TestCommitInterrupted cuts power at every step of the state write during a
// BootCommit: after restart the state is either the old or the new one, and
// some committed slot is always bootable.
func TestCommitInterrupted(t *testing.T) {
	for _, step := range []string{stepCreate, stepWrite, stepSync, stepRename, stepDir} {
		t.Run(step, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "hat.json")
			d, err := Open(path, Options{AttemptLimit: 3})
			if err != nil {
				t.Fatal(err)
			}
			c := client(t, d)
			ctx := t.Context()
			for range 2 {
				if _, err := c.BootAttempt(ctx, hatlink.SlotB); err != nil {
					t.Fatal(err)
				}
			}
			d.crash = func(s string) error {
				if s == step {
					return errCrash
				}
				return nil
			}
			if _, err := c.BootCommit(ctx, hatlink.SlotB); err == nil {
				t.Fatal("commit succeeded through a power loss")
			}
			after, err := Open(path, Options{})
			if err != nil {
				t.Fatalf("state unreadable after power loss at %s: %v", step, err)
			}
			s, _ := client(t, after).BootState(ctx)
			old := s.Committed == hatlink.SlotA && s.Attempts == [2]byte{0, 2}
			updated := s.Committed == hatlink.SlotB && s.Attempts == [2]byte{}
			if !old && !updated {
				t.Errorf("after power loss at %s: %+v is neither the old nor the new state", step, s)
			}
			if left, _ := filepath.Glob(path + ".tmp-*"); len(left) != 0 {
				t.Errorf("temporary files left behind: %v", left)
			}
		})
	}
}

// TestKilledMidCommit really interrupts: a child process commits and counts
// attempts in a loop until SIGKILL; the state file must always load.
func TestKilledMidCommit(t *testing.T) {
	if path := os.Getenv("HATSIM_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "hat.json")
	if _, err := Open(path, Options{AttemptLimit: 200}); err != nil {
		t.Fatal(err)
	}
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledMidCommit$")
		cmd.Env = append(os.Environ(), "HATSIM_CRASH_CHILD="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(30+rand.IntN(150)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		d, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("round %d: state unreadable after SIGKILL: %v", round, err)
		}
		s, _ := client(t, d).BootState(t.Context())
		if s.Committed > hatlink.SlotB || s.Next > hatlink.SlotB {
			t.Fatalf("round %d: no bootable slot: %+v", round, s)
		}
	}
}

func crashChild(path string) {
	d, err := Open(path, Options{})
	if err != nil {
		os.Exit(3)
	}
	c, err := hatlink.NewClient(context.Background(), hatlink.Direct(d))
	if err != nil {
		os.Exit(3)
	}
	for i := 0; i < 100000; i++ {
		slot := byte(i % 2)
		c.BootAttempt(context.Background(), 1-slot)
		c.BootCommit(context.Background(), slot)
	}
	os.Exit(0)
}

func TestSealLimits(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "hat.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, d)
	ctx := t.Context()
	var policy hatlink.Registers
	if _, err := c.Seal(ctx, policy, make([]byte, MaxSealedSize+1)); err == nil {
		t.Error("sealed a secret above the size limit")
	}
	for i := range MaxSealed {
		if _, err := c.Seal(ctx, policy, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var de *hatlink.DeviceError
	if _, err := c.Seal(ctx, policy, []byte("x")); !errors.As(err, &de) || de.Code != hatlink.CodeFull {
		t.Errorf("seal into a full store: err = %v, want CodeFull", err)
	}
}
