package hatsim

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/racklet/racklet-boot/hatlink"
)

// machineLog records what the HAT asked of its node.
type machineLog struct{ calls []string }

func (m *machineLog) SetPower(_ context.Context, on bool) error {
	m.calls = append(m.calls, "power "+onOff(on))
	return nil
}

func (m *machineLog) Reset(context.Context) error {
	m.calls = append(m.calls, "reset")
	return nil
}

func bmcClient(t *testing.T, d *Device) *hatlink.Client {
	t.Helper()
	c, err := hatlink.NewClient(t.Context(), hatlink.Direct(d.BMC()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPowerPersists: the node's power state survives the HAT's restart, a
// restart re-applies it to the node, and power on is a new boot.
func TestPowerPersists(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "hat.json")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &machineLog{}
	if err := d.Attach(ctx, m); err != nil {
		t.Fatal(err)
	}
	c := bmcClient(t, d)
	st, err := c.PowerState(ctx)
	if err != nil || !st.On {
		t.Fatalf("new HAT: %+v, %v; want on", st, err)
	}
	if st, err = c.PowerSet(ctx, false); err != nil || st.On {
		t.Fatalf("power off: %+v, %v", st, err)
	}
	d2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m2 := &machineLog{}
	if err := d2.Attach(ctx, m2); err != nil {
		t.Fatal(err)
	}
	c2 := bmcClient(t, d2)
	off, _ := c2.PowerState(ctx)
	if off.On {
		t.Fatal("power off did not survive the HAT's restart")
	}
	on, err := c2.PowerSet(ctx, true)
	if err != nil || !on.On || on.Counter != off.Counter+1 {
		t.Fatalf("power on: %+v, %v; want on with boot counter %d", on, err, off.Counter+1)
	}
	again, _ := c2.PowerSet(ctx, true)
	if again.Counter != on.Counter {
		t.Errorf("power on of a node that is on started a new boot: %d -> %d", on.Counter, again.Counter)
	}
	if _, err := c2.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"power on", "power off"}
	if diff := cmp.Diff(want, m.calls); diff != "" {
		t.Errorf("first HAT's node (-want +got):\n%s", diff)
	}
	want = []string{"power off", "power on", "power on", "reset"}
	if diff := cmp.Diff(want, m2.calls); diff != "" {
		t.Errorf("restarted HAT's node (-want +got):\n%s", diff)
	}
}

// TestBMCPortRefuses: the board-management port cannot change what the
// node measured or holds, and the Pi's port cannot switch power or read
// the console.
func TestBMCPortRefuses(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "hat.json"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	bmc := bmcClient(t, d)
	if _, err := bmc.Extend(ctx, 0, [32]byte{1}); !errors.Is(err, hatlink.ErrUnknownCommand) {
		t.Errorf("Extend on the BMC port: %v, want refused", err)
	}
	if _, err := bmc.BootCommit(ctx, hatlink.SlotB); !errors.Is(err, hatlink.ErrUnknownCommand) {
		t.Errorf("BootCommit on the BMC port: %v, want refused", err)
	}
	if _, err := bmc.Identity(ctx); err != nil {
		t.Errorf("Identity on the BMC port: %v", err)
	}
	pi := client(t, d)
	if _, err := pi.PowerSet(ctx, false); !errors.Is(err, hatlink.ErrUnknownCommand) {
		t.Errorf("PowerSet on the Pi's port: %v, want refused", err)
	}
	if _, err := pi.ConsoleRead(ctx, 0, 0, 100); !errors.Is(err, hatlink.ErrUnknownCommand) {
		t.Errorf("ConsoleRead on the Pi's port: %v, want refused", err)
	}
}

// TestConsoleRead: bytes come back per boot with their offsets; a reader
// that fell behind the buffer sees where the kept bytes start.
func TestConsoleRead(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "hat.json"), Options{ConsoleBuffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	c := bmcClient(t, d)
	boot1, _ := c.PowerState(ctx)
	d.Console().Write([]byte("hello\n"))
	if _, err := c.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	d.Console().Write([]byte("0123456789abcdefXYZ")) // 19 bytes into a 16-byte buffer
	type chunk struct {
		Boot, Start uint64
		Data        string
	}
	read := func(boot, off uint64, max int) chunk {
		t.Helper()
		ch, err := c.ConsoleRead(ctx, boot, off, max)
		if err != nil {
			t.Fatal(err)
		}
		return chunk{ch.Boot, ch.Start, string(ch.Data)}
	}
	b1, b2 := boot1.Counter, boot1.Counter+1
	tests := []struct {
		name      string
		boot, off uint64
		max       int
		want      chunk
	}{
		{"first boot is gone", b1, 0, 100, chunk{b2, 3, "3456789abcdefXYZ"}},
		{"bounded", b2, 3, 4, chunk{b2, 3, "3456"}},
		{"from an offset", b2, 10, 100, chunk{b2, 10, "abcdefXYZ"}},
		{"up to date", b2, 19, 100, chunk{b2, 19, ""}},
	}
	for _, tc := range tests {
		if got := read(tc.boot, tc.off, tc.max); got != tc.want {
			t.Errorf("%s: read(%d, %d) = %+v, want %+v", tc.name, tc.boot, tc.off, got, tc.want)
		}
	}
	big := bytes.Repeat([]byte("x"), 2*hatlink.MaxConsoleChunk)
	d2, _ := Open(filepath.Join(t.TempDir(), "hat.json"), Options{})
	d2.Console().Write(big)
	ch, err := bmcClient(t, d2).ConsoleRead(ctx, 0, 0, 1<<16)
	if err != nil || len(ch.Data) != hatlink.MaxConsoleChunk {
		t.Errorf("large read: %d bytes, %v; want %d", len(ch.Data), err, hatlink.MaxConsoleChunk)
	}
}
