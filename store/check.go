package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Report is what Check found in a state database file.
type Report struct {
	Path     string
	PageSize int
	Pages    uint64 // pages in use or free (the high water mark)
	Txid     uint64 // the last committed transaction
	// Records counts the readable records per bucket: "leases", "nodes" and
	// "events" (all nodes' events together).
	Records map[string]int
	// Problems is damage that makes bbolt fail (or crash) or loses records;
	// Check's error wraps ErrCorrupt when there is any.
	Problems []string
	// Notes is damage bbolt recovers from by itself, such as a torn meta
	// page while the other one is valid (the last write may be lost).
	Notes []string
}

// Check inspects the state database at path without trusting it: it reads
// the file (under a shared lock, so not while racklet-boot serve holds it),
// walks every page bbolt would reach with bounds checks, and decodes every
// record. A file with problems gives an error wrapping ErrCorrupt that says
// how to repair it; the Report lists them all. Check never panics on a
// damaged file and does not change it.
func Check(path string, lockTimeout time.Duration) (*Report, error) {
	data, err := readLocked(path, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("check state database %s: %w", path, err)
	}
	rep := &Report{Path: path, Records: map[string]int{}}
	w, valid, problems, notes := inspect(data)
	rep.Problems, rep.Notes = problems, notes
	if len(valid) > 0 {
		rep.PageSize, rep.Pages, rep.Txid = w.psize, valid[0].hwm, valid[0].txid
	}
	for _, r := range w.records {
		bucket, err := decodeRecord(r)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
			continue
		}
		rep.Records[bucket]++
	}
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("check state database %s: %w", path, damaged(path, rep.Problems))
	}
	return rep, nil
}

// damaged is the error for a file with problems: the first few and the
// way out.
func damaged(path string, problems []string) error {
	shown := problems
	if len(shown) > 3 {
		shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(problems)-3))
	}
	return fmt.Errorf("%w: %s; see all with `racklet-boot state check --data-dir %s`, and keep every readable record with `racklet-boot state repair --data-dir %s` (it keeps the damaged file beside the new one)",
		ErrCorrupt, strings.Join(shown, "; "), filepath.Dir(path), filepath.Dir(path))
}

// corruptRecord is the error for a record that does not decode, met by a
// read of an open store.
func corruptRecord(path, what string, err error) error {
	return damaged(path, []string{fmt.Sprintf("%s does not decode: %v", what, err)})
}

// decodeRecord checks that a record decodes as what its bucket holds and
// returns the bucket's name.
func decodeRecord(r record) (string, error) {
	switch {
	case len(r.path) == 1 && string(r.path[0]) == string(bucketLeases):
		var l Lease
		if err := json.Unmarshal(r.val, &l); err != nil {
			return "", fmt.Errorf("lease %q does not decode: %v", r.key, err)
		}
		if err := checkLease(&l); err != nil || l.MAC != string(r.key) {
			return "", fmt.Errorf("lease %q is not valid (mac %q): %v", r.key, l.MAC, err)
		}
		return "leases", nil
	case len(r.path) == 1 && string(r.path[0]) == string(bucketNodes):
		var n Node
		if err := json.Unmarshal(r.val, &n); err != nil {
			return "", fmt.Errorf("node %q does not decode: %v", r.key, err)
		}
		if err := checkKey("node", n.Key); err != nil || n.Key != string(r.key) {
			return "", fmt.Errorf("node %q is not valid (key %q): %v", r.key, n.Key, err)
		}
		return "nodes", nil
	case len(r.path) == 2 && string(r.path[0]) == string(bucketEvents):
		var e Event
		if err := json.Unmarshal(r.val, &e); err != nil || len(r.key) != 8 {
			return "", fmt.Errorf("event %q of node %q does not decode: %v", r.key, r.path[1], err)
		}
		return "events", nil
	}
	return "", fmt.Errorf("record %q in bucket %s belongs to no known bucket", r.key, pathString(r.path))
}

// seqOf returns the sequence number an event key encodes.
func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k) }

// readLocked reads the file at path while holding a shared flock (the one
// bbolt takes exclusively while a store is open), waiting up to timeout.
func readLocked(path string, timeout time.Duration) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := lockFile(f, unix.LOCK_SH, timeout); err != nil {
		return nil, err
	}
	var data []byte
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 && fi.Size() < 1<<40 {
		data = make([]byte, 0, fi.Size()+1)
	}
	data, err = readAllInto(f, data)
	if err != nil {
		return nil, err
	}
	return data, nil
}

// lockFile takes a flock on f, polling until timeout; the lock goes with
// f's last close.
func lockFile(f *os.File, how int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %s for its lock: is racklet-boot running with this data directory? %w", timeout, ErrLocked)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readAllInto reads r to its end, appending to buf.
func readAllInto(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
