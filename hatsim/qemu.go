package hatsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// QEMU is a node run by QEMU, powered by the HAT through QEMU's monitor
// (QMP) and watched through its first serial port, the node's console
// UART. Power on starts QEMU paused (-S), connects the console and the
// monitor, then lets it run (cont), so not one console byte is lost; power
// off is a cut (quit), as the HAT's load switch does; a power cycle while
// on is system_reset. QEMU daemonizes, so a node keeps running while the
// HAT restarts; the next Attach finds it through its monitor socket.
type QEMU struct {
	// Command is the QEMU binary and the node's arguments (machine,
	// memory, firmware, disks, NICs). Leave out -serial, -qmp, -S,
	// -daemonize and -pidfile: QEMU adds them.
	Command []string
	// Dir holds the monitor and console sockets and the pid file.
	Dir string
	// Console receives the node's console bytes (Device.Console).
	Console io.Writer
	// Log receives power changes; nil discards.
	Log *slog.Logger

	mu  sync.Mutex
	con *consoleConn // the console reader
}

var _ Machine = (*QEMU)(nil)

func (q *QEMU) qmpPath() string     { return filepath.Join(q.Dir, "qmp.sock") }
func (q *QEMU) consolePath() string { return filepath.Join(q.Dir, "console.sock") }

// PIDFile is where QEMU writes its process id.
func (q *QEMU) PIDFile() string { return filepath.Join(q.Dir, "qemu.pid") }

func (q *QEMU) log() *slog.Logger {
	if q.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return q.Log
}

// SetPower implements Machine.
func (q *QEMU) SetPower(ctx context.Context, on bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	running := q.running(ctx)
	switch {
	case on && running:
		q.connectConsole(ctx)
		return q.cont(ctx)
	case on:
		return q.start(ctx)
	case running:
		return q.stop(ctx)
	}
	return nil
}

// Reset implements Machine: system_reset, or a cold start if QEMU is not running.
func (q *QEMU) Reset(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.running(ctx) {
		return q.start(ctx)
	}
	if _, err := qmpDo(ctx, q.qmpPath(), "system_reset", nil); err != nil {
		return err
	}
	q.log().Info("node reset")
	return q.cont(ctx)
}

// pid returns QEMU's process id from its pid file, if that process lives.
func (q *QEMU) pid() (int, bool) {
	b, err := os.ReadFile(q.PIDFile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}

// running reports whether a QEMU answers on the monitor socket.
func (q *QEMU) running(ctx context.Context) bool {
	if _, ok := q.pid(); !ok {
		return false
	}
	_, err := qmpDo(ctx, q.qmpPath(), "query-status", nil)
	return err == nil
}

func (q *QEMU) start(ctx context.Context) error {
	if len(q.Command) == 0 {
		return errors.New("no QEMU command to start the node with")
	}
	if err := os.MkdirAll(q.Dir, 0o750); err != nil {
		return err
	}
	q.closeConsole()
	for _, p := range []string{q.qmpPath(), q.consolePath(), q.PIDFile()} {
		os.Remove(p)
	}
	args := append(append([]string(nil), q.Command[1:]...),
		"-S", "-no-shutdown", "-daemonize", "-pidfile", q.PIDFile(),
		"-qmp", "unix:"+q.qmpPath()+",server=on,wait=off",
		"-chardev", "socket,id=racklet-console,path="+q.consolePath()+",server=on,wait=off",
		"-serial", "chardev:racklet-console")
	cmd := exec.CommandContext(ctx, q.Command[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // the node outlives the HAT's process
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("start QEMU: %w: %s", err, strings.TrimSpace(string(out)))
	}
	q.connectConsole(ctx)
	if err := q.cont(ctx); err != nil {
		return err
	}
	pid, _ := q.pid()
	q.log().Info("node powered on", "pid", pid)
	return nil
}

// cont lets a paused QEMU run.
func (q *QEMU) cont(ctx context.Context) error {
	raw, err := qmpDo(ctx, q.qmpPath(), "query-status", nil)
	if err != nil {
		return err
	}
	var st struct {
		Running bool `json:"running"`
	}
	if json.Unmarshal(raw, &st) == nil && st.Running {
		return nil
	}
	_, err = qmpDo(ctx, q.qmpPath(), "cont", nil)
	return err
}

// stop cuts the power: quit, then wait for the process to go (killing it
// if it will not).
func (q *QEMU) stop(ctx context.Context) error {
	pid, _ := q.pid()
	if _, err := qmpDo(ctx, q.qmpPath(), "quit", nil); err != nil {
		q.log().Warn("QEMU did not take quit; killing it", "err", err)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, alive := q.pid(); !alive {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	q.closeConsole()
	q.log().Info("node powered off", "pid", pid)
	return nil
}

// connectConsole reads the node's console socket into Console until QEMU
// closes it, unless a reader is running already.
func (q *QEMU) connectConsole(ctx context.Context) {
	if q.Console == nil {
		return
	}
	if q.con != nil {
		select {
		case <-q.con.done:
		default:
			return // still reading
		}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", q.consolePath())
	if err != nil {
		q.log().Warn("connect to the node's console", "err", err)
		return
	}
	con := &consoleConn{c: c, done: make(chan struct{})}
	q.con = con
	go func() {
		defer close(con.done)
		_, _ = io.Copy(q.Console, c)
		c.Close()
	}()
}

// closeConsole ends the console reader, if any.
func (q *QEMU) closeConsole() {
	if q.con != nil {
		q.con.c.Close()
		<-q.con.done
		q.con = nil
	}
}

type consoleConn struct {
	c    net.Conn
	done chan struct{}
}
