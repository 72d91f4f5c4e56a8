//go:build !tinygo

package hatlink

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Dial opens the byte stream to a HAT named by spec:
//
//	unix:PATH        a Unix socket (the simulator)
//	tcp:HOST:PORT    a TCP socket (the simulator)
//	/dev/ttyAMA0     a serial device or pseudo-terminal, set to raw 115200 8N1
func Dial(ctx context.Context, spec string) (io.ReadWriteCloser, error) {
	var d net.Dialer
	switch {
	case strings.HasPrefix(spec, "unix:"):
		c, err := d.DialContext(ctx, "unix", strings.TrimPrefix(spec, "unix:"))
		if err != nil {
			return nil, fmt.Errorf("connect to HAT: %w", err)
		}
		return c, nil
	case strings.HasPrefix(spec, "tcp:"):
		c, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(spec, "tcp:"))
		if err != nil {
			return nil, fmt.Errorf("connect to HAT: %w", err)
		}
		return c, nil
	case spec == "":
		return nil, fmt.Errorf("no HAT given: use a device path, unix:PATH or tcp:HOST:PORT")
	default:
		// Non-blocking, so the runtime poller serves reads and Close
		// interrupts a blocked Read.
		f, err := os.OpenFile(spec, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("open HAT serial port: %w", err)
		}
		if err := MakeRawFile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("set %s to raw 115200 8N1: %w", spec, err)
		}
		return f, nil
	}
}

// MakeRawFile is MakeRaw on an open file, leaving its blocking mode alone.
func MakeRawFile(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var rerr error
	if err := sc.Control(func(fd uintptr) { rerr = MakeRaw(int(fd)) }); err != nil {
		return err
	}
	return rerr
}

// MakeRaw puts a terminal into raw 8N1 mode at 115200 baud: no echo, no
// line editing, no byte translation, reads return as soon as one byte is in.
func MakeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CBAUD
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B115200
	t.Ispeed, t.Ospeed = unix.B115200, unix.B115200
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Pace wraps a stream so writes take as long as they would on a serial line
// of bytesPerSec (11520 for 115200 baud 8N1): a write returns once its last
// byte would have left the wire. Reads and Close pass through.
func Pace(rw io.ReadWriter, bytesPerSec int) io.ReadWriteCloser {
	return &paced{rw: rw, perByte: time.Second / time.Duration(bytesPerSec)}
}

type paced struct {
	rw      io.ReadWriter
	perByte time.Duration
	mu      sync.Mutex
	free    time.Time // when the line is next idle
}

func (p *paced) Read(b []byte) (int, error) { return p.rw.Read(b) }

func (p *paced) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.free.Before(now) {
		p.free = now
	}
	p.free = p.free.Add(time.Duration(len(b)) * p.perByte)
	time.Sleep(time.Until(p.free))
	return p.rw.Write(b)
}

func (p *paced) Close() error {
	if c, ok := p.rw.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
