package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// RepairReport says what Repair kept and where the damaged file went.
type RepairReport struct {
	// Kept counts the records copied per bucket ("leases", "nodes", "events").
	Kept map[string]int `json:"kept"`
	// Dropped lists records found but not readable, and the damage that hid
	// any others (Check's problems).
	Dropped []string `json:"dropped,omitempty"`
	// Old is where the original file now is, beside the new one.
	Old string `json:"old"`
}

// Repair rebuilds the state database at path from every record that can
// still be read: it walks the pages of both meta pages' trees with bounds
// checks (the newest first, so the latest version of a record wins), keeps
// each record that decodes, writes them into a new bbolt file, then renames
// the old file to path.damaged-<time> and the new one to path. It needs the
// file unlocked (racklet-boot stopped) and never panics on a damaged file.
func Repair(path string, lockTimeout time.Duration) (*RepairReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("repair state database: %w", err)
	}
	defer f.Close()
	if err := lockFile(f, unix.LOCK_EX, lockTimeout); err != nil {
		return nil, fmt.Errorf("repair state database %s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("repair state database %s: %w", path, err)
	}
	rep := &RepairReport{Kept: map[string]int{}}
	recs, seqs, lost := salvage(data)
	rep.Dropped = lost
	tmp := fmt.Sprintf("%s.repair-%d", path, os.Getpid())
	os.Remove(tmp)
	if err := writeRecords(tmp, recs, seqs, rep); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("repair state database %s: %w", path, err)
	}
	rep.Old = fmt.Sprintf("%s.damaged-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, rep.Old); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("repair state database %s: keep the old file: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("repair state database %s: the old file is %s, the repaired one %s: %w", path, rep.Old, tmp, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return rep, nil
}

// salvage collects the records of every valid meta page's tree, newest
// first: a record already found is not replaced by an older version. It
// returns them with the nested buckets' sequences and the damage met.
func salvage(data []byte) ([]record, map[string]uint64, []string) {
	w, valid, problems, _ := inspect(data)
	lost := append([]string(nil), problems...)
	seen := map[string]bool{}
	var recs []record
	seqs := map[string]uint64{}
	for i, m := range valid {
		if i > 0 {
			w = &walker{data: data, psize: w.psize}
			w.walkTree(m)
		}
		for _, b := range w.buckets {
			if k := string(bytes.Join(b.path, []byte{0})); b.seq > seqs[k] {
				seqs[k] = b.seq
			}
		}
		for _, r := range w.records {
			id := string(bytes.Join(append(append([][]byte(nil), r.path...), r.key), []byte{0}))
			if seen[id] {
				continue
			}
			seen[id] = true
			recs = append(recs, r)
		}
	}
	return recs, seqs, lost
}

// writeRecords writes the records that decode into a new bbolt file.
func writeRecords(path string, recs []record, seqs map[string]uint64, rep *RepairReport) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLeases, bucketNodes, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		for _, r := range recs {
			bucket, err := decodeRecord(r)
			if err != nil {
				rep.Dropped = append(rep.Dropped, err.Error())
				continue
			}
			b := tx.Bucket(r.path[0])
			if len(r.path) == 2 {
				if b, err = b.CreateBucketIfNotExists(r.path[1]); err != nil {
					return err
				}
				seq := max(seqs[string(bytes.Join(r.path, []byte{0}))], seqOf(r.key))
				if seq > b.Sequence() {
					if err := b.SetSequence(seq); err != nil {
						return err
					}
				}
			}
			if err := b.Put(bytes.Clone(r.key), bytes.Clone(r.val)); err != nil {
				return err
			}
			rep.Kept[bucket]++
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
