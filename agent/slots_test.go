package agent_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
)

// decisions is racklet-boot's A/B side as the node API sees it: one
// decision for pc-01, and the reports it was handed.
type decisions struct {
	mu   sync.Mutex
	boot bootparams.SlotBoot
	got  []bootparams.Report
}

func (d *decisions) Decision(string) (bootparams.SlotBoot, bool) { return d.boot, true }

func (d *decisions) Report(_ context.Context, r bootparams.Report) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, r)
	return nil
}

func (d *decisions) last() bootparams.Report {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got[len(d.got)-1]
}

// hatState reads the simulated HAT's A/B state.
func hatState(t *testing.T, hat *hatsim.Device) hatlink.BootState {
	t.Helper()
	a, b := net.Pipe()
	go hatlink.Serve(t.Context(), b, hat)
	c, err := hatlink.NewClient(t.Context(), hatlink.NewLink(a))
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.BootState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBootTrialOnHAT: a boot racklet-boot serves as a trial counts its
// attempt on the HAT before attesting and sends the HAT's state with its
// reports; the booted OS's healthy report commits the slot on the HAT. A
// trial whose slot spent its budget is refused by the HAT: the boot fails
// with the HAT's state in its report.
func TestBootTrialOnHAT(t *testing.T) {
	hat := newHAT(t)
	r := newRack(t, hat)
	ab := &decisions{boot: bootparams.SlotBoot{Image: "sha256:22", Slot: "b", Trial: true, Attempt: 1, Allowed: 3}}
	r.api.AB = ab
	m := r.machine(t, hat)
	dir := t.TempDir()
	handover := filepath.Join(dir, "boot.json")
	var console strings.Builder
	agent.Boot(t.Context(), agent.BootOptions{Machine: m, Console: &console, ServerKey: r.signer.Public(), RootDir: filepath.Join(dir, "root"), HandoverFile: handover})
	if !strings.Contains(console.String(), "slot b: attempt 1 of 3 (the HAT counted 1 of 3)") {
		t.Errorf("console does not name the trial attempt:\n%s", console.String())
	}
	if st := hatState(t, hat); st.Attempts != [2]byte{0, 1} || st.Committed != hatlink.SlotA {
		t.Errorf("HAT after the trial boot: %+v, want one attempt of slot b", st)
	}
	if h := ab.last().HAT; h == nil || h.Attempts != [2]int{0, 1} || !h.Allowed {
		t.Errorf("the last report carries HAT state %+v, want slot b's attempt", h)
	}
	// The booted OS reports healthy and commits slot b on the HAT.
	open := func(ctx context.Context, _ string) (io.ReadWriteCloser, error) {
		a, b := net.Pipe()
		go hatlink.Serve(context.WithoutCancel(ctx), b, hat)
		return a, nil
	}
	if err := agent.Health(t.Context(), agent.HealthOptions{Handover: handover, Attempts: 1, OpenHAT: open}); err != nil {
		t.Fatal(err)
	}
	if st := hatState(t, hat); st.Committed != hatlink.SlotB || st.Attempts != [2]byte{} {
		t.Errorf("HAT after the healthy report: %+v, want slot b committed, counts reset", st)
	}
	if rep := ab.last(); rep.Stage != bootparams.StageHealthy {
		t.Errorf("last report %+v, want healthy", rep)
	}

	// A failed health check is reported as a failure, and commits nothing.
	if err := agent.Health(t.Context(), agent.HealthOptions{Handover: handover, Attempts: 1, OpenHAT: open, Failed: "kubelet down"}); err != nil {
		t.Fatal(err)
	}
	if rep := ab.last(); rep.Stage != bootparams.StageFailed || rep.Reason != "health check: kubelet down" {
		t.Errorf("last report %+v, want failed with the health check's reason", rep)
	}

	// Three more trials of slot a (the HAT's limit is 3): the fourth is refused.
	ab.boot = bootparams.SlotBoot{Image: "sha256:33", Slot: "a", Trial: true, Attempt: 1, Allowed: 5}
	for i := range 4 {
		console.Reset()
		m := r.machine(t, hat)
		agent.Boot(t.Context(), agent.BootOptions{Machine: m, Console: &console, ServerKey: r.signer.Public(), RootDir: filepath.Join(dir, "root"), HandoverFile: handover})
		refused := strings.Contains(console.String(), "the HAT refused the trial's attempt")
		if refused != (i == 3) {
			t.Errorf("boot %d: refused %v; console:\n%s", i+1, refused, console.String())
		}
	}
	if rep := ab.last(); rep.Stage != bootparams.StageFailed || rep.HAT == nil || rep.HAT.Allowed || rep.HAT.Attempts != [2]int{3, 0} {
		t.Errorf("refused boot's report %+v (HAT %+v), want failed with the HAT's refusal", rep, rep.HAT)
	}
	// Re-armed (a new image after a spent budget), the HAT counts again from 1.
	ab.boot.Rearm = true
	console.Reset()
	agent.Boot(t.Context(), agent.BootOptions{Machine: r.machine(t, hat), Console: &console, ServerKey: r.signer.Public(), RootDir: filepath.Join(dir, "root"), HandoverFile: handover})
	if st := hatState(t, hat); st.Attempts != [2]byte{1, 0} || st.Committed != hatlink.SlotB {
		t.Errorf("HAT after a re-armed trial: %+v, want slot a's first attempt, b committed", st)
	}
}
