package hatsim

import (
	"context"
	"fmt"
	"io"

	"github.com/racklet/racklet-boot/hatlink"
)

// Machine is the node a HAT powers. The simulator drives a QEMU node
// through QMP (QEMU); a test can plug in its own. Methods are idempotent:
// SetPower(ctx, true) on a running node leaves it running.
type Machine interface {
	// SetPower switches the node on (a cold boot) or off (power cut).
	SetPower(ctx context.Context, on bool) error
	// Reset power-cycles a node that is on.
	Reset(ctx context.Context) error
}

// Console is where the node's console UART bytes go: the HAT keeps the
// newest of them (Options.ConsoleBuffer) for racklet-boot's ConsoleRead.
func (d *Device) Console() io.Writer { return &d.console }

// Attach connects the device to the node it powers and makes the node's
// power what the HAT's state says: a node left on stays on (and running,
// if it still is) across the HAT's own restarts; one left off stays off.
func (d *Device) Attach(ctx context.Context, m Machine) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.machine = m
	on := !d.st.PowerOff
	if err := m.SetPower(ctx, on); err != nil {
		return fmt.Errorf("bring the node to its recorded power state (on=%t): %w", on, err)
	}
	d.log.Info("hat attached to its node", "on", on, "bootCounter", d.st.BootCounter)
	return nil
}

// Power reports whether the node is switched on.
func (d *Device) Power() hatlink.PowerStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.powerStatus()
}

func (d *Device) powerStatus() hatlink.PowerStatus {
	return hatlink.PowerStatus{On: !d.st.PowerOff, Counter: d.st.BootCounter}
}

// setPower switches the node: the state is written first, so a HAT that
// restarts right after keeps the node as it was asked to be. Switching on
// is a new boot (registers zero, boot counter +1); asking for the state the
// node is in only makes sure the machine agrees.
func (d *Device) setPower(ctx context.Context, on bool) (hatlink.PowerStatus, error) {
	if on != !d.st.PowerOff {
		next := d.st.clone()
		next.PowerOff = !on
		if on {
			next.BootCounter++
		}
		if err := d.commit(next); err != nil {
			return hatlink.PowerStatus{}, err
		}
		d.regs = [hatlink.NumRegisters][32]byte{}
		if on {
			d.console.newBoot(next.BootCounter)
		}
		d.log.Info("hat power", "on", on, "bootCounter", next.BootCounter)
	}
	if d.machine != nil {
		if err := d.machine.SetPower(ctx, on); err != nil {
			return hatlink.PowerStatus{}, fmt.Errorf("switch the node %s: %w", onOff(on), err)
		}
	}
	return d.powerStatus(), nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// BMC is the device as its board-management port serves it, to
// racklet-boot: identity and quotes (so racklet-boot can tell which HAT it
// reached), the A/B state, power and the console. The commands that change
// what the node measured or holds (Extend, Seal, Unseal, Unwrap,
// BootAttempt, BootCommit) are the Pi's alone and refused here.
func (d *Device) BMC() hatlink.Handler { return bmcPort{d} }

type bmcPort struct{ d *Device }

func (b bmcPort) Handle(ctx context.Context, req []byte) []byte {
	if len(req) > 0 {
		switch hatlink.Command(req[0]) {
		case hatlink.CmdHello, hatlink.CmdIdentity, hatlink.CmdRead, hatlink.CmdQuote, hatlink.CmdBootState,
			hatlink.CmdPowerState, hatlink.CmdPowerSet, hatlink.CmdPowerCycle, hatlink.CmdConsoleRead:
		default:
			return refuse(hatlink.Command(req[0]), hatlink.CodeUnknown, "not served on the board-management port")
		}
	}
	return b.d.handle1(ctx, req, true)
}
