// Package devmapper drives the Linux device-mapper through its ioctls on
// /dev/mapper/control: create a device, load a table, resume it, read its
// table back, remove it. It exists because no maintained Go module served by
// the module proxy does this without cgo or the dmsetup binary, and the
// initramfs has neither.
//
// Only what the node boot path needs is here: one-target tables (a verity
// target, see Verity) on devices the caller names. The ioctl structures are
// those of <linux/dm-ioctl.h>, interface version 4.
package devmapper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ControlPath is the device-mapper control device.
const ControlPath = "/dev/mapper/control"

// Sizes and offsets of struct dm_ioctl and struct dm_target_spec.
const (
	nameLen       = 128
	uuidLen       = 129
	headerSize    = 312 // sizeof(struct dm_ioctl)
	targetSize    = 40  // sizeof(struct dm_target_spec)
	typeNameLen   = 16
	offDataSize   = 12
	offDataStart  = 16
	offTargets    = 20
	offFlags      = 28
	offDev        = 40
	offName       = 48
	offUUID       = offName + nameLen
	ioctlBase     = 0xfd
	maxBufferSize = 1 << 20
)

// Commands (DM_*_CMD).
const (
	cmdVersion     = 0
	cmdDevCreate   = 3
	cmdDevRemove   = 4
	cmdDevSuspend  = 6
	cmdTableLoad   = 9
	cmdTableStatus = 12
)

// Flags of struct dm_ioctl.
const (
	flagReadOnly    = 1 << 0
	flagStatusTable = 1 << 4
	flagBufferFull  = 1 << 8
)

// Target is one line of a device-mapper table.
type Target struct {
	Start  uint64 // first sector
	Length uint64 // sectors
	Type   string // "verity", "linear", ...
	Params string // the target's parameters, as dmsetup table prints them
}

// String renders the target as a dmsetup table line.
func (t Target) String() string {
	return fmt.Sprintf("%d %d %s %s", t.Start, t.Length, t.Type, t.Params)
}

// Device is a device-mapper device that exists in the kernel.
type Device struct {
	Name string
	Dev  uint64 // device number (unix.Mkdev form)
}

// Path is the device node devtmpfs makes for it: /dev/dm-<minor>.
func (d Device) Path() string { return fmt.Sprintf("/dev/dm-%d", unix.Minor(d.Dev)) }

// ioctlNumber is _IOWR(DM_IOCTL, cmd, struct dm_ioctl).
func ioctlNumber(cmd uint) uint {
	return 3<<30 | headerSize<<16 | ioctlBase<<8 | cmd
}

// request builds an ioctl buffer: the header with name, uuid and flags,
// then payload, in a buffer of size bytes (at least header + payload).
func request(name, uuid string, flags uint32, targets uint32, payload []byte, size int) ([]byte, error) {
	if len(name) == 0 || len(name) >= nameLen || strings.ContainsRune(name, '/') {
		return nil, fmt.Errorf("device-mapper name %q: want 1 to %d bytes and no slash", name, nameLen-1)
	}
	if len(uuid) >= uuidLen {
		return nil, fmt.Errorf("device-mapper uuid %q is longer than %d bytes", uuid, uuidLen-1)
	}
	if size < headerSize+len(payload) {
		size = headerSize + len(payload)
	}
	b := make([]byte, size)
	le := binary.NativeEndian
	le.PutUint32(b[0:], 4) // interface version 4.0.0
	le.PutUint32(b[offDataSize:], uint32(size))
	le.PutUint32(b[offDataStart:], headerSize)
	le.PutUint32(b[offTargets:], targets)
	le.PutUint32(b[offFlags:], flags)
	copy(b[offName:], name)
	copy(b[offUUID:], uuid)
	copy(b[headerSize:], payload)
	return b, nil
}

// encodeTargets lays out dm_target_spec entries, each followed by its
// NUL-terminated parameters padded to 8 bytes; next is the offset from one
// spec to the following one.
func encodeTargets(ts []Target) ([]byte, error) {
	var out []byte
	for _, t := range ts {
		if len(t.Type) == 0 || len(t.Type) >= typeNameLen {
			return nil, fmt.Errorf("device-mapper target type %q: want 1 to %d bytes", t.Type, typeNameLen-1)
		}
		if strings.IndexByte(t.Params, 0) >= 0 {
			return nil, errors.New("device-mapper target parameters contain a NUL byte")
		}
		n := targetSize + len(t.Params) + 1
		n = (n + 7) &^ 7
		spec := make([]byte, n)
		le := binary.NativeEndian
		le.PutUint64(spec[0:], t.Start)
		le.PutUint64(spec[8:], t.Length)
		le.PutUint32(spec[20:], uint32(n))
		copy(spec[24:24+typeNameLen], t.Type)
		copy(spec[targetSize:], t.Params)
		out = append(out, spec...)
	}
	return out, nil
}

// decodeTargets reads the targets of a DM_TABLE_STATUS answer: count specs
// in data, where each spec's next field is an offset from the start of data.
func decodeTargets(data []byte, count uint32) ([]Target, error) {
	le := binary.NativeEndian
	var ts []Target
	off := 0
	for i := uint32(0); i < count; i++ {
		if off+targetSize > len(data) {
			return nil, fmt.Errorf("device-mapper table answer truncated at target %d", i)
		}
		s := data[off:]
		t := Target{Start: le.Uint64(s[0:]), Length: le.Uint64(s[8:]), Type: cString(s[24 : 24+typeNameLen])}
		next := int(le.Uint32(s[20:]))
		end := len(s)
		if i+1 < count {
			if next < off+targetSize || next > len(data) {
				return nil, fmt.Errorf("device-mapper table answer has a bad offset %d at target %d", next, i)
			}
			end = next - off
		}
		t.Params = cString(s[targetSize:end])
		ts = append(ts, t)
		off = next
	}
	return ts, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// control is an open /dev/mapper/control.
type control struct{ f *os.File }

func openControl() (*control, error) {
	f, err := os.OpenFile(ControlPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open device-mapper control (is dm-mod loaded?): %w", err)
	}
	return &control{f: f}, nil
}

func (c *control) Close() error { return c.f.Close() }

// do runs one ioctl on buf and returns it as the kernel left it.
func (c *control) do(cmd uint, buf []byte) error {
	sc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var errno unix.Errno
	if err := sc.Control(func(fd uintptr) {
		_, _, errno = unix.Syscall(unix.SYS_IOCTL, fd, uintptr(ioctlNumber(cmd)), uintptr(unsafe.Pointer(&buf[0])))
	}); err != nil {
		return err
	}
	if errno != 0 {
		return errno
	}
	return nil
}
