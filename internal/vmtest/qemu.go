package vmtest

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
)

// Machine is a QEMU x86-64 machine booting a kernel and initramfs directly.
type Machine struct {
	Kernel, Initrd string
	Append         string   // kernel command line
	MemoryMiB      int      // default 512
	Args           []string // more QEMU arguments (NICs, devices)
}

// QEMUArgs returns the arguments of qemu-system-x86_64 for m: no display,
// the serial console on stdout, no reboot (a reboot ends QEMU).
func (m Machine) QEMUArgs() []string {
	mem := m.MemoryMiB
	if mem == 0 {
		mem = 512
	}
	args := []string{"-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot",
		"-m", strconv.Itoa(mem), "-kernel", m.Kernel, "-initrd", m.Initrd, "-append", m.Append}
	return append(args, m.Args...)
}

// Console is a running machine's serial output.
type Console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
	err  error
}

func (c *Console) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(b)
}

// String returns everything printed so far.
func (c *Console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Run boots m with qemu-system-x86_64 (TCG) and returns once QEMU exits or
// timeout passes (then QEMU is killed and the test fails).
func Run(t testing.TB, m Machine, timeout time.Duration) string {
	t.Helper()
	qemu := testutil.NeedTool(t, "qemu-system-x86_64")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := &Console{}
	cmd := exec.CommandContext(ctx, qemu, m.QEMUArgs()...)
	cmd.Stdout, cmd.Stderr = c, c
	err := cmd.Run()
	out := strings.ReplaceAll(c.String(), "\r", "")
	if ctx.Err() != nil {
		t.Fatalf("the machine did not power off within %s; console:\n%s", timeout, Tail(out, 6000))
	}
	if err != nil {
		t.Fatalf("qemu: %v; console:\n%s", err, Tail(out, 6000))
	}
	return out
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
