package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Record is one entry of a keyed state journal: the latest state of one
// thing (an A/B slot machine of a node, a rollout), as its owner encodes it.
// The store does not interpret Data; it keeps, per key, the record with the
// highest Seq it was given, so a replayed or reordered write never moves a
// key backwards.
type Record struct {
	Key  string          `json:"key"`
	Seq  uint64          `json:"seq"` // the owner's transition counter for Key
	Data json.RawMessage `json:"data"`
}

// checkRecords validates a batch of records.
func checkRecords(recs []Record) error {
	for _, r := range recs {
		if err := checkKey("record", r.Key); err != nil {
			return err
		}
		if !json.Valid(r.Data) {
			return fmt.Errorf("%w: record %s: data is not JSON", ErrInvalid, r.Key)
		}
	}
	return nil
}

// bucketRecords holds the state journal: Record.Key -> Record JSON.
var bucketRecords = []byte("records")

// PutRecords stores every record in one durable commit (all or none). A
// record whose Seq is not above the stored one for its key is skipped.
func (b *Bolt) PutRecords(ctx context.Context, recs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkRecords(recs); err != nil {
		return fmt.Errorf("put records: %w", err)
	}
	if len(recs) == 0 {
		return nil
	}
	return b.batch(fmt.Sprintf("put %d state records", len(recs)), func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketRecords)
		for _, r := range recs {
			if old := bk.Get([]byte(r.Key)); old != nil {
				var prev Record
				if err := json.Unmarshal(old, &prev); err == nil && prev.Seq >= r.Seq {
					continue
				}
			}
			data, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := bk.Put([]byte(r.Key), data); err != nil {
				return err
			}
		}
		return nil
	})
}

// Records returns every record whose key starts with prefix, ordered by key.
func (b *Bolt) Records(ctx context.Context, prefix string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Record
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("record %s: %w", k, err)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, b.wrap("read state records", err)
}

// PutRecords stores every record (all or none), skipping those whose Seq is
// not above the stored one.
func (m *Memory) PutRecords(ctx context.Context, recs ...Record) error {
	if err := checkRecords(recs); err != nil {
		return fmt.Errorf("put records: %w", err)
	}
	if err := m.lock(ctx, "put records"); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = make(map[string]Record)
	}
	for _, r := range recs {
		if prev, ok := m.records[r.Key]; ok && prev.Seq >= r.Seq {
			continue
		}
		r.Data = append(json.RawMessage(nil), r.Data...)
		m.records[r.Key] = r
	}
	return nil
}

// Records returns every record whose key starts with prefix, ordered by key.
func (m *Memory) Records(ctx context.Context, prefix string) ([]Record, error) {
	if err := m.lock(ctx, "read state records"); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []Record
	for k, r := range m.records {
		if strings.HasPrefix(k, prefix) {
			r.Data = append(json.RawMessage(nil), r.Data...)
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
