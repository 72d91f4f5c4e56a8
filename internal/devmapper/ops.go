package devmapper

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Create makes a read-only device called name with the given table and
// activates it: DM_DEV_CREATE, DM_TABLE_LOAD (read-only), DM_DEV_SUSPEND
// without the suspend flag (resume). uuid may be empty. If a step fails the
// half-made device is removed again.
func Create(name, uuid string, table []Target) (Device, error) {
	if len(table) == 0 {
		return Device{}, errors.New("device-mapper table is empty")
	}
	specs, err := encodeTargets(table)
	if err != nil {
		return Device{}, err
	}
	c, err := openControl()
	if err != nil {
		return Device{}, err
	}
	defer c.Close()
	buf, err := request(name, uuid, 0, 0, nil, 0)
	if err != nil {
		return Device{}, err
	}
	if err := c.do(cmdDevCreate, buf); err != nil {
		return Device{}, fmt.Errorf("create device-mapper device %s: %w", name, err)
	}
	dev := Device{Name: name, Dev: binary.NativeEndian.Uint64(buf[offDev:])}
	fail := func(what string, err error) (Device, error) {
		if rb, rerr := request(name, "", 0, 0, nil, 0); rerr == nil {
			_ = c.do(cmdDevRemove, rb)
		}
		return Device{}, fmt.Errorf("%s of device-mapper device %s: %w", what, name, err)
	}
	buf, err = request(name, "", flagReadOnly, uint32(len(table)), specs, 0)
	if err != nil {
		return fail("load the table", err)
	}
	if err := c.do(cmdTableLoad, buf); err != nil {
		return fail("load the table", err)
	}
	buf, _ = request(name, "", 0, 0, nil, 0)
	if err := c.do(cmdDevSuspend, buf); err != nil {
		return fail("resume", err)
	}
	return dev, nil
}

// Remove deletes the device called name.
func Remove(name string) error {
	c, err := openControl()
	if err != nil {
		return err
	}
	defer c.Close()
	buf, err := request(name, "", 0, 0, nil, 0)
	if err != nil {
		return err
	}
	if err := c.do(cmdDevRemove, buf); err != nil {
		return fmt.Errorf("remove device-mapper device %s: %w", name, err)
	}
	return nil
}

// Table returns the active table of the device called name, as `dmsetup
// table` prints it (DM_TABLE_STATUS with DM_STATUS_TABLE_FLAG).
func Table(name string) ([]Target, error) {
	c, err := openControl()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for size := 16 << 10; size <= maxBufferSize; size *= 4 {
		buf, err := request(name, "", flagStatusTable, 0, nil, size)
		if err != nil {
			return nil, err
		}
		if err := c.do(cmdTableStatus, buf); err != nil {
			return nil, fmt.Errorf("read the table of device-mapper device %s: %w", name, err)
		}
		le := binary.NativeEndian
		if le.Uint32(buf[offFlags:])&flagBufferFull != 0 {
			continue
		}
		start := le.Uint32(buf[offDataStart:])
		end := le.Uint32(buf[offDataSize:])
		if start < headerSize || end > uint32(len(buf)) || start > end {
			return nil, fmt.Errorf("device-mapper answered a table at bytes %d-%d of %d", start, end, len(buf))
		}
		return decodeTargets(buf[start:end], le.Uint32(buf[offTargets:]))
	}
	return nil, fmt.Errorf("the table of device-mapper device %s is larger than %d bytes", name, maxBufferSize)
}

// Version returns the kernel's device-mapper interface version.
func Version() ([3]uint32, error) {
	var v [3]uint32
	c, err := openControl()
	if err != nil {
		return v, err
	}
	defer c.Close()
	buf := make([]byte, headerSize)
	le := binary.NativeEndian
	le.PutUint32(buf[0:], 4)
	le.PutUint32(buf[offDataSize:], headerSize)
	le.PutUint32(buf[offDataStart:], headerSize)
	if err := c.do(cmdVersion, buf); err != nil {
		return v, fmt.Errorf("device-mapper version: %w", err)
	}
	for i := range v {
		v[i] = le.Uint32(buf[4*i:])
	}
	return v, nil
}

// devString is a device number as device-mapper tables write it.
func devString(dev uint64) string { return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)) }
