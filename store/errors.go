package store

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
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

// DeclinedPrefix starts the key of a quarantined address: a lease whose MAC
// is DeclinedPrefix followed by its own address belongs to no client (DHCP
// DECLINE: the address is in use by a machine that never asked for it).
const DeclinedPrefix = "declined:"

// leaseKey returns the key a lease is stored under: its normalised MAC, or
// DeclinedPrefix + address for a quarantined address.
func leaseKey(s string) (string, error) {
	if rest, ok := strings.CutPrefix(s, DeclinedPrefix); ok {
		a, err := netip.ParseAddr(rest)
		if err != nil {
			return "", fmt.Errorf("%w: declined lease key %q: %v", ErrInvalid, s, err)
		}
		return DeclinedPrefix + a.String(), nil
	}
	return normalizeMAC(s)
}

// checkLease validates a lease and normalises its key.
func checkLease(l *Lease) error {
	mac, err := leaseKey(l.MAC)
	if err != nil {
		return err
	}
	l.MAC = mac
	if !l.Addr.IsValid() {
		return fmt.Errorf("%w: lease for %s has no address", ErrInvalid, mac)
	}
	if strings.HasPrefix(mac, DeclinedPrefix) && mac != DeclinedPrefix+l.Addr.String() {
		return fmt.Errorf("%w: declined lease %s is for address %s", ErrInvalid, mac, l.Addr)
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
