// Package hatsim is a simulated Racklet HAT: the RP2040 that holds a node's
// keys, measurement registers, boot counter, sealed secrets and A/B attempt
// counter. It answers the hatlink protocol exactly as firmware would: keys
// never leave it, registers are only ever extended and reset only on a power
// cycle it performs, the boot registers close at EndBoot until that power
// cycle, and no secret is released unless the registers match its policy. Tests and users
// without hardware run it through cmd/racklet-hat-sim.
package hatsim

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"

	"github.com/racklet/racklet-boot/hatlink"
)

// Defaults for a new state file.
const (
	DefaultAttemptLimit = 3
	DefaultFirmware     = 0x00010000 // 1.0.0
	// MaxSealed is how many sealed secrets the store holds.
	MaxSealed = 16
	// MaxSealedSize is the largest sealed secret.
	MaxSealedSize = 256
)

// Options shape a new HAT; they are used only when the state file does not exist yet.
type Options struct {
	Serial       string // default: 8 random hex digits
	AttemptLimit byte   // default DefaultAttemptLimit
	Firmware     uint32 // default DefaultFirmware
	Logger       *slog.Logger
	// ConsoleBuffer is how many console bytes are kept for racklet-boot
	// to read (default DefaultConsoleBuffer).
	ConsoleBuffer int
}

// Device is one simulated HAT. It implements hatlink.Handler and is safe for
// concurrent use.
type Device struct {
	mu    sync.Mutex
	path  string
	st    *state
	regs  [hatlink.NumRegisters][32]byte
	ended bool // EndBoot ran: the boot registers are closed until a power cycle
	sign  ed25519.PrivateKey
	box   *ecdh.PrivateKey
	log   *slog.Logger
	crash crashHook // tests only

	machine Machine // the node it powers; nil: power is only a recorded state
	console consoleRing
}

var _ hatlink.Handler = (*Device)(nil)

// Open loads the HAT state at path, creating it (with fresh keys) if it does
// not exist. Opening is a power-on: the registers start at zero and the boot
// counter increments.
func Open(path string, opts Options) (*Device, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	st, err := readState(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st, err = newState(opts)
		if err != nil {
			return nil, err
		}
		log.Info("hat created new identity", "state", path, "serial", st.Serial)
	case err != nil:
		return nil, err
	}
	d := &Device{path: path, st: st, log: log}
	d.console.max = opts.ConsoleBuffer
	if d.console.max <= 0 {
		d.console.max = DefaultConsoleBuffer
	}
	d.sign = ed25519.NewKeyFromSeed(st.SignSeed)
	if d.box, err = ecdh.X25519().NewPrivateKey(st.BoxKey); err != nil {
		return nil, fmt.Errorf("HAT state file %s: box key: %w", path, err)
	}
	next := st.clone()
	next.BootCounter++
	if err := d.commit(next); err != nil {
		return nil, err
	}
	d.console.newBoot(next.BootCounter)
	return d, nil
}

func newState(opts Options) (*state, error) {
	st := &state{Version: 1, Serial: opts.Serial, Limit: opts.AttemptLimit, Firmware: opts.Firmware, NextHandle: 1}
	if st.Limit == 0 {
		st.Limit = DefaultAttemptLimit
	}
	if st.Firmware == 0 {
		st.Firmware = DefaultFirmware
	}
	if len(st.Serial) > hatlink.MaxSerial {
		return nil, fmt.Errorf("serial %q longer than %d bytes", st.Serial, hatlink.MaxSerial)
	}
	if st.Serial == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		st.Serial = hex.EncodeToString(b[:])
	}
	st.SignSeed = make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(st.SignSeed)
	box, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	st.BoxKey = box.Bytes()
	return st, nil
}

// commit persists next atomically and only then makes it current.
func (d *Device) commit(next *state) error {
	if err := writeState(d.path, next, d.crash); err != nil {
		return err
	}
	d.st = next
	return nil
}

// Identity returns what the HAT reports about itself.
func (d *Device) Identity() hatlink.IdentityResponse {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.identity()
}

func (d *Device) identity() hatlink.IdentityResponse {
	r := hatlink.IdentityResponse{Firmware: d.st.Firmware, Registers: hatlink.NumRegisters, Serial: d.st.Serial}
	copy(r.SignKey[:], d.sign.Public().(ed25519.PublicKey))
	copy(r.BoxKey[:], d.box.PublicKey().Bytes())
	return r
}

// PowerCycle resets the registers and increments the boot counter, as the
// RP2040 does when it cuts and restores the Pi's power.
func (d *Device) PowerCycle() (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.powerCycle()
}

func (d *Device) powerCycle() (uint64, error) {
	next := d.st.clone()
	next.BootCounter++
	next.PowerOff = false
	if err := d.commit(next); err != nil {
		return 0, err
	}
	d.regs, d.ended = [hatlink.NumRegisters][32]byte{}, false
	d.console.newBoot(next.BootCounter)
	d.log.Info("hat power cycle", "bootCounter", next.BootCounter)
	if d.machine != nil {
		if err := d.machine.Reset(context.Background()); err != nil {
			return 0, fmt.Errorf("power-cycle the node: %w", err)
		}
	}
	return next.BootCounter, nil
}

// registers returns the current values selected by mask.
func (d *Device) registers(mask byte) hatlink.Registers {
	r := hatlink.Registers{Mask: mask}
	for i := range hatlink.NumRegisters {
		if mask&(1<<i) != 0 {
			r.Values[i] = d.regs[i]
		}
	}
	return r
}

// bootState reports the A/B state; trial is the non-committed slot.
func (d *Device) bootState(allowed bool) hatlink.BootState {
	s := hatlink.BootState{Committed: d.st.Committed, Next: d.st.Committed, Limit: d.st.Limit,
		Attempts: d.st.Attempts, Allowed: allowed, Counter: d.st.BootCounter}
	trial := 1 - d.st.Committed
	if a := d.st.Attempts[trial]; a > 0 && a < d.st.Limit {
		s.Next = trial
	}
	return s
}

// Handle implements hatlink.Handler: the Pi's port. Power switching and
// console reading are served on the board-management port only (BMC).
func (d *Device) Handle(ctx context.Context, req []byte) []byte {
	if len(req) > 0 && (hatlink.Command(req[0]) == hatlink.CmdPowerSet || hatlink.Command(req[0]) == hatlink.CmdConsoleRead) {
		return refuse(hatlink.Command(req[0]), hatlink.CodeUnknown, "served on the board-management port only")
	}
	return d.handle1(ctx, req, false)
}

func (d *Device) handle1(ctx context.Context, req []byte, bmc bool) []byte {
	if len(req) == 0 {
		return refuse(0, hatlink.CodeMalformed, "empty request")
	}
	cmd := hatlink.Command(req[0])
	if cmd == hatlink.CmdConsoleRead {
		// The console has its own lock: the UART keeps flowing while a
		// power command waits for the machine.
		return d.consoleRead(req[1:])
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	resp, err := d.handle(ctx, cmd, req[1:])
	if err != nil {
		var de *hatlink.DeviceError
		if errors.As(err, &de) {
			return refuse(cmd, de.Code, de.Message)
		}
		d.log.Error("hat command failed", "cmd", byte(cmd), "err", err)
		return refuse(cmd, hatlink.CodeInternal, err.Error())
	}
	return resp
}

func refuse(cmd hatlink.Command, code hatlink.ErrorCode, msg string) []byte {
	if len(msg) > 255 {
		msg = msg[:255]
	}
	return hatlink.DeviceError{Code: code, Command: cmd, Message: msg}.Append([]byte{hatlink.RespError})
}

func deviceErr(code hatlink.ErrorCode, format string, args ...any) error {
	return &hatlink.DeviceError{Code: code, Message: fmt.Sprintf(format, args...)}
}
