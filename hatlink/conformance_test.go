package hatlink_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
)

// newDevice opens a simulated HAT with its state in a temp dir.
func newDevice(t *testing.T) *hatsim.Device {
	t.Helper()
	d, err := hatsim.Open(filepath.Join(t.TempDir(), "hat.json"), hatsim.Options{Serial: "5b154510", AttemptLimit: 3})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// transports builds every transport over a fresh device: the in-process
// reference, a real pseudo-terminal, Unix and TCP sockets, and a lossy
// in-memory wire that drops, corrupts, splits and truncates.
var transports = map[string]func(t *testing.T, ctx context.Context, dev *hatsim.Device) hatlink.Transport{
	"direct": func(t *testing.T, ctx context.Context, dev *hatsim.Device) hatlink.Transport {
		return hatlink.Direct(dev)
	},
	"pty": listened("pty"),
	"unix": func(t *testing.T, ctx context.Context, dev *hatsim.Device) hatlink.Transport {
		return listened("unix:"+filepath.Join(t.TempDir(), "hat.sock"))(t, ctx, dev)
	},
	"tcp": listened("tcp:127.0.0.1:0"),
	"lossy": func(t *testing.T, ctx context.Context, dev *hatsim.Device) hatlink.Transport {
		host, devEnd := lossyPair(uint64(time.Now().UnixNano()), noise{Drop: 0.0005, Flip: 0.0005, Insert: 0.0005,
			TruncateEvery: 5, BurstEvery: 3, MaxChunk: 9})
		done := make(chan error, 1)
		go func() { done <- hatlink.Serve(ctx, devEnd, dev) }()
		l := hatlink.NewLink(host)
		l.Timeout, l.Retries = 150*time.Millisecond, 20
		t.Cleanup(func() {
			l.Close()
			devEnd.Close()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
			st := l.Stats()
			t.Logf("host decoder: %+v", st)
			if st.Skipped == 0 || st.BadHeader == 0 || st.Oversize == 0 {
				t.Errorf("the lossy wire did not exercise resynchronisation: %+v", st)
			}
		})
		return l
	},
}

func listened(spec string) func(t *testing.T, ctx context.Context, dev *hatsim.Device) hatlink.Transport {
	return func(t *testing.T, ctx context.Context, dev *hatsim.Device) hatlink.Transport {
		ctx, cancel := context.WithCancel(ctx)
		addr := make(chan string, 1)
		done := make(chan error, 1)
		go func() { done <- hatsim.ListenAndServe(ctx, spec, dev, nil, func(a string) { addr <- a }) }()
		var a string
		select {
		case a = <-addr:
		case err := <-done:
			t.Fatalf("listen %s: %v", spec, err)
		}
		rw, err := hatlink.Dial(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		l := hatlink.NewLink(rw)
		t.Cleanup(func() {
			l.Close()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("ListenAndServe: %v", err)
			}
		})
		return l
	}
}

func TestConformance(t *testing.T) {
	for name, mk := range transports {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			dev := newDevice(t)
			tr := mk(t, ctx, dev)
			c, err := hatlink.NewClient(ctx, tr)
			if err != nil {
				t.Fatal(err)
			}
			conformance(t, ctx, c, tr, dev)
		})
	}
}

func conformance(t *testing.T, ctx context.Context, c *hatlink.Client, tr hatlink.Transport, dev *hatsim.Device) {
	id, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(dev.Identity(), id); diff != "" {
		t.Errorf("identity differs (-device +wire):\n%s", diff)
	}

	// Extend the four boot registers; values follow sha256(old || digest).
	var want hatlink.Registers
	want.Mask = hatlink.BootMask
	for reg, text := range []string{"kernel", "initramfs", "cmdline", "roothash"} {
		d := sha256.Sum256([]byte(text))
		got, err := c.Extend(ctx, byte(reg), d)
		if err != nil {
			t.Fatalf("extend %d: %v", reg, err)
		}
		want.Values[reg] = hatlink.ExtendValue([32]byte{}, d)
		if got != want.Values[reg] {
			t.Errorf("extend %d = %x, want %x", reg, got, want.Values[reg])
		}
	}
	if _, err := c.Extend(ctx, hatlink.NumRegisters, [32]byte{}); !errors.Is(err, hatlink.ErrBadRegister) {
		t.Errorf("extend of register %d: err = %v, want ErrBadRegister", hatlink.NumRegisters, err)
	}
	regs, err := c.Read(ctx, hatlink.BootMask)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, regs); diff != "" {
		t.Errorf("read registers (-want +got):\n%s", diff)
	}

	// Quote: verifies against the identity key, carries nonce and registers.
	st, nonce := quote(t, ctx, c, id)
	if st.Nonce != nonce || st.Registers != want || st.BoxKey != id.BoxKey || st.Serial != "5b154510" {
		t.Errorf("statement = %+v, want nonce, registers, box key and serial echoed", st)
	}

	// Seal / Unseal under the current registers.
	h, err := c.Seal(ctx, want, []byte("sealed secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Unseal(ctx, h); err != nil || string(got) != "sealed secret" {
		t.Errorf("unseal = %q, %v; want the secret", got, err)
	}
	if _, err := c.Unseal(ctx, h+100); !errors.Is(err, hatlink.ErrNoHandle) {
		t.Errorf("unseal of unknown handle: err = %v, want ErrNoHandle", err)
	}

	// Unwrap: opens only envelopes to this HAT under matching registers.
	env, err := hatlink.Wrap(rand.Reader, id.BoxKey, want, []byte("join-token"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Unwrap(ctx, env); err != nil || string(got) != "join-token" {
		t.Errorf("unwrap = %q, %v; want the secret", got, err)
	}
	other := want
	other.Values[0][0] ^= 1
	env2, _ := hatlink.Wrap(rand.Reader, id.BoxKey, other, []byte("x"))
	if _, err := c.Unwrap(ctx, env2); !errors.Is(err, hatlink.ErrPolicyMismatch) {
		t.Errorf("unwrap under another policy: err = %v, want ErrPolicyMismatch", err)
	}
	stranger := newDevice(t).Identity().BoxKey
	env3, _ := hatlink.Wrap(rand.Reader, stranger, want, []byte("x"))
	if _, err := c.Unwrap(ctx, env3); !errors.Is(err, hatlink.ErrDecrypt) {
		t.Errorf("unwrap of another HAT's envelope: err = %v, want ErrDecrypt", err)
	}

	bootCounter(t, ctx, c)
	endBoot(t, ctx, c, id, want, env, h)

	// Power cycle: registers reset, so sealed secrets stay locked.
	before, _ := c.BootState(ctx)
	n, err := c.PowerCycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != before.Counter+1 {
		t.Errorf("boot counter after power cycle = %d, want %d", n, before.Counter+1)
	}
	if regs, _ := c.Read(ctx, hatlink.BootMask); regs.Values != [hatlink.NumRegisters][32]byte{} {
		t.Errorf("registers survived a power cycle: %x", regs.Values)
	}
	if _, err := c.Unseal(ctx, h); !errors.Is(err, hatlink.ErrPolicyMismatch) {
		t.Errorf("unseal after power cycle: err = %v, want ErrPolicyMismatch", err)
	}
	if _, err := c.Unwrap(ctx, env); !errors.Is(err, hatlink.ErrPolicyMismatch) {
		t.Errorf("unwrap after power cycle: err = %v, want ErrPolicyMismatch", err)
	}
	// The power cycle opened the boot registers again: a new boot measures.
	d := sha256.Sum256([]byte("kernel"))
	if got, err := c.Extend(ctx, hatlink.RegKernel, d); err != nil || got != want.Values[hatlink.RegKernel] {
		t.Errorf("extend after power cycle = %x, %v; want %x (the lock ends with the boot)", got, err, want.Values[hatlink.RegKernel])
	}

	// An unknown command gets an error answer, not silence.
	resp, err := tr.Send(ctx, []byte{0x42, 1, 2, 3})
	if err != nil || len(resp) == 0 || resp[0] != hatlink.RespError {
		t.Errorf("unknown command: answer %x, %v; want an error answer", resp, err)
	}
}

// quote asks for a quote of the boot registers over a fresh nonce and
// verifies it against the HAT's identity key.
func quote(t *testing.T, ctx context.Context, c *hatlink.Client, id hatlink.IdentityResponse) (hatlink.Statement, [32]byte) {
	t.Helper()
	var nonce [32]byte
	rand.Read(nonce[:])
	q, err := c.Quote(ctx, nonce, hatlink.BootMask)
	if err != nil {
		t.Fatal(err)
	}
	st, err := hatlink.VerifyQuote(ed25519.PublicKey(id.SignKey[:]), q.Statement, q.Signature[:])
	if err != nil {
		t.Fatal(err)
	}
	return st, nonce
}

// endBoot: the hand-over closes the boot registers. The running OS can
// neither extend them, nor get a quote of the measured boot, nor open a
// secret bound to it; the other registers stay open; a second EndBoot
// changes nothing.
func endBoot(t *testing.T, ctx context.Context, c *hatlink.Client, id hatlink.IdentityResponse, measured hatlink.Registers, env []byte, sealed uint16) {
	t.Helper()
	regs, err := c.EndBoot(ctx)
	if err != nil {
		t.Fatalf("EndBoot: %v", err)
	}
	handed := hatlink.HandedOver(measured)
	if diff := cmp.Diff(handed, regs); diff != "" {
		t.Errorf("EndBoot registers (-want +got):\n%s", diff)
	}
	for reg := range hatlink.NumRegisters {
		if hatlink.BootMask&(1<<reg) == 0 {
			continue
		}
		if _, err := c.Extend(ctx, byte(reg), [32]byte{1}); !errors.Is(err, hatlink.ErrLocked) {
			t.Errorf("extend of boot register %d after EndBoot: err = %v, want ErrLocked", reg, err)
		}
	}
	if _, err := c.Extend(ctx, 4, [32]byte{1}); err != nil {
		t.Errorf("extend of register 4 after EndBoot: %v (only the boot registers close)", err)
	}
	if st, _ := quote(t, ctx, c, id); st.Registers == measured || st.Registers != handed {
		t.Errorf("quote after EndBoot shows %x, want the handed-over values, never the measured boot's", st.Registers.Values)
	}
	if _, err := c.Unwrap(ctx, env); !errors.Is(err, hatlink.ErrPolicyMismatch) {
		t.Errorf("unwrap of a secret bound to the measured boot after EndBoot: err = %v, want ErrPolicyMismatch", err)
	}
	if _, err := c.Unseal(ctx, sealed); !errors.Is(err, hatlink.ErrPolicyMismatch) {
		t.Errorf("unseal of a secret bound to the measured boot after EndBoot: err = %v, want ErrPolicyMismatch", err)
	}
	again, err := c.EndBoot(ctx)
	if err != nil || again != handed {
		t.Errorf("second EndBoot = %x, %v; want the same registers, unchanged", again.Values, err)
	}
}

// bootCounter: limit 3, three uncommitted trials of B fall back to A; a
// commit resets the count.
func bootCounter(t *testing.T, ctx context.Context, c *hatlink.Client) {
	for i := 1; i <= 3; i++ {
		s, err := c.BootAttempt(ctx, hatlink.SlotB)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Allowed || s.Attempts[hatlink.SlotB] != byte(i) {
			t.Fatalf("attempt %d of B: %+v, want allowed with %d attempts", i, s, i)
		}
	}
	s, err := c.BootState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Next != hatlink.SlotA {
		t.Errorf("after 3 failed trials of B, next = %d, want A (fall back)", s.Next)
	}
	if s, _ := c.BootAttempt(ctx, hatlink.SlotB); s.Allowed || s.Next != hatlink.SlotA {
		t.Errorf("4th attempt of B: %+v, want refused, fall back to A", s)
	}
	if _, err := c.BootAttempt(ctx, 7); !errors.Is(err, hatlink.ErrBadSlot) {
		t.Errorf("attempt of slot 7: err = %v, want ErrBadSlot", err)
	}
	s, err = c.BootCommit(ctx, hatlink.SlotB)
	if err != nil {
		t.Fatal(err)
	}
	if s.Committed != hatlink.SlotB || s.Attempts != [2]byte{} || s.Next != hatlink.SlotB {
		t.Errorf("after commit of B: %+v, want B committed, attempts reset", s)
	}
	if s, _ := c.BootAttempt(ctx, hatlink.SlotA); !s.Allowed || s.Attempts[hatlink.SlotA] != 1 {
		t.Errorf("first trial of A after commit: %+v, want allowed, 1 attempt", s)
	}
}

// TestRetransmitRunsOnce: every second answer from the device is cut in
// half, so the Extend answer is lost and the host retransmits; the device
// must answer from its cache, not extend twice.
func TestRetransmitRunsOnce(t *testing.T) {
	ctx := t.Context()
	dev := newDevice(t)
	host, devEnd := lossyPairs(7, noise{MaxChunk: 64}, noise{TruncateEvery: 2, MaxChunk: 64})
	done := make(chan error, 1)
	go func() { done <- hatlink.Serve(ctx, devEnd, dev) }()
	l := hatlink.NewLink(host)
	l.Timeout, l.Retries = 100*time.Millisecond, 3
	defer func() {
		l.Close()
		devEnd.Close()
		<-done
	}()
	c, err := hatlink.NewClient(ctx, l) // answer 1: whole
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("kernel"))
	got, err := c.Extend(ctx, 0, d) // answer 2: cut; answer 3: the cached copy
	if err != nil {
		t.Fatal(err)
	}
	if want := hatlink.ExtendValue([32]byte{}, d); got != want {
		t.Fatalf("register after one Extend = %x, want %x (applied twice?)", got, want)
	}
	regs, err := c.Read(ctx, 1) // answer 4 cut, 5 whole
	if err != nil {
		t.Fatal(err)
	}
	if regs.Values[0] != got {
		t.Errorf("register read back %x, want %x", regs.Values[0], got)
	}
}
