package bmc

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/bmc/consolelog"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/store"
)

// rack is a Directory over a map, changeable while the server runs.
type rack struct {
	mu    sync.Mutex
	keys  map[string]string // key -> node
	power map[string]bool
}

func (r *rack) NodeForKey(_ context.Context, key string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.keys[key]
	return n, ok
}

func (r *rack) ConfigPower(node string) (bool, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	on, ok := r.power[node]
	return on, ok
}

func (r *rack) set(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
}

// harness runs a bmc.Server on loopback TCP with simulated HATs dialling in.
type harness struct {
	t      *testing.T
	srv    *Server
	rack   *rack
	events *store.Memory
	con    *consolelog.Store
	addr   string
	found  chan Discovery
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, rack: &rack{keys: map[string]string{}, power: map[string]bool{}}, events: store.NewMemory(), found: make(chan Discovery, 8)}
	var err error
	if h.con, err = consolelog.Open(filepath.Join(t.TempDir(), "console"), consolelog.Options{}); err != nil {
		t.Fatal(err)
	}
	h.srv, err = New(t.TempDir(), Options{Directory: h.rack, Events: h.events, Console: h.con,
		PowerInterval: 50 * time.Millisecond, ConsoleInterval: 20 * time.Millisecond, Timeout: 500 * time.Millisecond,
		Discovered: func(_ context.Context, d Discovery) { h.found <- d }})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = "tcp:" + ln.Addr().String()
	testutil.Serve(t, func(ctx context.Context) error { return h.srv.Serve(ctx, ln) })
	return h
}

// hat starts a simulated HAT connected to the server.
func (h *harness) hat(serial string) *hatsim.Device {
	h.t.Helper()
	d, err := hatsim.Open(filepath.Join(h.t.TempDir(), "hat.json"), hatsim.Options{Serial: serial})
	if err != nil {
		h.t.Fatal(err)
	}
	testutil.Serve(h.t, func(ctx context.Context) error { return hatsim.DialAndServe(ctx, h.addr, d.BMC(), nil) })
	return d
}

func key(d *hatsim.Device) string { return hatlink.EncodeKey(d.Identity().SignKey) }

// eventually polls cond for up to 10 s.
func (h *harness) eventually(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) events1(node, typ string) []store.Event {
	evs, _ := h.events.Events(context.Background(), node, 0)
	var out []store.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// TestPowerFollowsConfigAndOperators: the config's power is applied when
// the HAT connects; an operator's request wins until the config's value
// changes; every switch is in the timeline with who asked.
func TestPowerFollowsConfigAndOperators(t *testing.T) {
	h := newHarness(t)
	d := h.hat("5b154510")
	h.rack.set(func() { h.rack.keys[key(d)], h.rack.power["pi-01"] = "pi-01", false })
	h.eventually("the config's power off", func() bool { return len(h.events1("pi-01", "power.off")) > 0 })
	if ev := h.events1("pi-01", "power.off"); d.Power().On || len(ev) != 1 || !strings.Contains(ev[0].Detail, "rack config") {
		t.Fatalf("power.off events %+v", ev)
	}
	ctx := t.Context()
	st, err := h.srv.Power(ctx, "pi-01", "on", "alice")
	if err != nil || !st.On || !d.Power().On || st.WantBy != "alice" {
		t.Fatalf("power on by alice: %+v, %v", st, err)
	}
	time.Sleep(200 * time.Millisecond) // several reconcile rounds: the operator's on holds
	if !d.Power().On {
		t.Fatal("the config's off undid alice's on without a config change")
	}
	before := d.Power().Counter
	if _, err := h.srv.Power(ctx, "pi-01", "cycle", "bob"); err != nil || d.Power().Counter != before+1 {
		t.Fatalf("cycle: %v, counter %d -> %d", err, before, d.Power().Counter)
	}
	h.rack.set(func() { h.rack.power["pi-01"] = true }) // the config changed after alice: it wins again
	h.srv.Rescan()
	h.rack.set(func() { h.rack.power["pi-01"] = false }) // even when edited back
	h.srv.Rescan()
	h.eventually("the changed config's off", func() bool { return len(h.events1("pi-01", "power.off")) == 2 })
	for typ, by := range map[string]string{"power.on": "asked by alice", "power.cycle": "asked by bob"} {
		if ev := h.events1("pi-01", typ); len(ev) != 1 || !strings.Contains(ev[0].Detail, by) {
			t.Errorf("%s events %+v, want one %q", typ, ev, by)
		}
	}
	if _, err := h.srv.Power(ctx, "pi-01", "cycle", "bob"); err == nil {
		t.Error("cycle of a node wanted off succeeded")
	}
	if _, err := h.srv.Power(ctx, "pi-99", "on", "bob"); err == nil {
		t.Error("power on of an unknown node succeeded")
	}
}

// TestConsoleAndFailure: the console reaches the log per boot; a kernel
// panic becomes a boot.failed event pointing at its lines.
func TestConsoleAndFailure(t *testing.T) {
	h := newHarness(t)
	d := h.hat("5b154510")
	h.rack.set(func() { h.rack.keys[key(d)], h.rack.power["pi-01"] = "pi-01", true })
	h.eventually("the HAT connected", func() bool { st, _ := h.srv.Status("pi-01"); return st.Connected })
	boot := d.Power().Counter
	for i := range 40 {
		d.Console().Write([]byte(strings.Repeat("x", i) + " kernel line\n"))
	}
	d.Console().Write([]byte("[    2.0] Kernel panic - not sy"))
	d.Console().Write([]byte("ncing: Attempted to kill init!\nmore\n"))
	h.eventually("boot.failed", func() bool { return len(h.events1("pi-01", "boot.failed")) == 1 })
	ev := h.events1("pi-01", "boot.failed")[0]
	want := store.ConsoleRef{Boot: boot, From: 41 - refBefore, To: 41 + refAfter}
	if ev.Console == nil || *ev.Console != want || !strings.Contains(ev.Detail, "kernel panic") {
		t.Fatalf("boot.failed %+v console %+v, want %+v", ev, ev.Console, want)
	}
	l, err := h.con.Read("pi-01", boot)
	if err != nil || l.Lines != 42 || !strings.Contains(string(l.Text), "Attempted to kill init!") {
		t.Fatalf("console log: %+v, %v", l.Boot, err)
	}
	if _, err := h.srv.Power(t.Context(), "pi-01", "cycle", "alice"); err != nil {
		t.Fatal(err)
	}
	d.Console().Write([]byte("second boot\n"))
	h.eventually("the second boot's log", func() bool { l, err := h.con.Read("pi-01", boot+1); return err == nil && l.Lines == 1 })
}

// TestDiscoveryThenApproval: a HAT no node names is reported and left
// alone; once its key belongs to a node it is managed.
func TestDiscoveryThenApproval(t *testing.T) {
	h := newHarness(t)
	d := h.hat("5b154517")
	var got Discovery
	select {
	case got = <-h.found:
	case <-time.After(10 * time.Second):
		t.Fatal("no discovery")
	}
	if got.Key != key(d) || got.Serial != "5b154517" {
		t.Fatalf("discovery %+v", got)
	}
	h.rack.set(func() { h.rack.keys[key(d)], h.rack.power["pi-17"] = "pi-17", false })
	h.srv.Rescan()
	h.eventually("the approved node managed", func() bool { return !d.Power().On })
}

// TestImpostorRefused: a HAT whose quote does not verify under the key it
// names is dropped before anything else.
func TestImpostorRefused(t *testing.T) {
	h := newHarness(t)
	real := h.hat("5b154510")
	liar := &impostor{Device: real}
	testutil.Serve(t, func(ctx context.Context) error { return hatsim.DialAndServe(ctx, h.addr, liar, nil) })
	h.rack.set(func() { h.rack.keys[key(real)], h.rack.power["pi-01"] = "pi-01", true })
	h.srv.Rescan() // either HAT may have connected before its key named a node: as a reload does
	h.eventually("the real HAT managed", func() bool { st, _ := h.srv.Status("pi-01"); return st.Connected })
	time.Sleep(300 * time.Millisecond)
	if n := len(h.events1("pi-01", "bmc.connected")); n != 1 {
		t.Errorf("%d connections accepted for pi-01, want 1 (the impostor's refused)", n)
	}
}

// impostor answers Quote with a signature over other bytes.
type impostor struct{ *hatsim.Device }

func (i *impostor) Handle(ctx context.Context, req []byte) []byte {
	resp := i.Device.BMC().Handle(ctx, req)
	if len(req) > 0 && hatlink.Command(req[0]) == hatlink.CmdQuote && len(resp) > 70 {
		resp[len(resp)-1] ^= 1
	}
	return resp
}
