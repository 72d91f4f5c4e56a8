package store

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Sentinel errors callers can branch on with errors.Is.
var (
	// ErrClosed is returned by every call on a store after Close.
	ErrClosed = errors.New("state store is closed")
	// ErrLocked is returned by OpenBolt when another process holds the file.
	ErrLocked = errors.New("state database is locked by another process")
	// ErrInvalid wraps rejected input (a lease without a MAC, a node without a key, ...).
	ErrInvalid = errors.New("invalid record")
	// ErrCorrupt is returned by OpenBolt, Check and reads when the state
	// database file is damaged; the message says how to repair it.
	ErrCorrupt = errors.New("state database is damaged")
)

// maxKeyLen bounds node keys, which are also bbolt bucket names.
const maxKeyLen = 1024

// normalizeMAC returns the MAC in lower-case, colon-separated form.
func normalizeMAC(s string) (string, error) {
	m, err := net.ParseMAC(s)
	if err != nil {
		return "", fmt.Errorf("%w: lease mac %q: %v", ErrInvalid, s, err)
	}
	return m.String(), nil
}

// checkLease validates a lease and normalises its MAC.
func checkLease(l *Lease) error {
	mac, err := normalizeMAC(l.MAC)
	if err != nil {
		return err
	}
	l.MAC = mac
	if !l.Addr.IsValid() {
		return fmt.Errorf("%w: lease for %s has no address", ErrInvalid, mac)
	}
	return nil
}

// checkKey validates a node key (also used as an event log name).
func checkKey(what, key string) error {
	if key == "" {
		return fmt.Errorf("%w: %s has no node key", ErrInvalid, what)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("%w: %s node key is %d bytes, at most %d", ErrInvalid, what, len(key), maxKeyLen)
	}
	return nil
}

// checkEvent validates an event and stamps it with the current time when it has none.
func checkEvent(e *Event) error {
	if err := checkKey("event", e.Node); err != nil {
		return err
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	return nil
}
