package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// put marshals v and stores it under key in the named top-level bucket.
func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), data)
}

// PutLease stores (or replaces) the lease of l.MAC, durably.
func (b *Bolt) PutLease(ctx context.Context, l Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkLease(&l); err != nil {
		return fmt.Errorf("put lease: %w", err)
	}
	return b.batch("put lease "+l.MAC, func(tx *bolt.Tx) error {
		return put(tx, bucketLeases, l.MAC, l)
	})
}

// DeleteLease removes the lease of mac; deleting a missing lease is not an error.
func (b *Bolt) DeleteLease(ctx context.Context, mac string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	key, err := leaseKey(mac)
	if err != nil {
		return fmt.Errorf("delete lease: %w", err)
	}
	return b.batch("delete lease "+key, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).Delete([]byte(key))
	})
}

// Leases returns every lease, ordered by MAC.
func (b *Bolt) Leases(ctx context.Context) ([]Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Lease
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).ForEach(func(k, v []byte) error {
			var l Lease
			if err := json.Unmarshal(v, &l); err != nil {
				return fmt.Errorf("lease %s: %w", k, err)
			}
			out = append(out, l)
			return nil
		})
	})
	return out, b.wrap("read leases", err)
}

// PutNode stores (or replaces) the node n.Key, durably.
func (b *Bolt) PutNode(ctx context.Context, n Node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkKey("node", n.Key); err != nil {
		return fmt.Errorf("put node: %w", err)
	}
	return b.batch("put node "+n.Key, func(tx *bolt.Tx) error {
		return put(tx, bucketNodes, n.Key, n)
	})
}

// Node returns the node stored under key; ok is false when there is none.
func (b *Bolt) Node(ctx context.Context, key string) (n Node, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return Node{}, false, err
	}
	err = b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketNodes).Get([]byte(key))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &n)
	})
	return n, ok, b.wrap("read node "+key, err)
}

// Nodes returns every node, ordered by key.
func (b *Bolt) Nodes(ctx context.Context) ([]Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Node
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNodes).ForEach(func(k, v []byte) error {
			var n Node
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("node %s: %w", k, err)
			}
			out = append(out, n)
			return nil
		})
	})
	return out, b.wrap("read nodes", err)
}

// AddEvent appends e to the log of e.Node, durably, dropping the oldest
// events past the per-node limit.
func (b *Bolt) AddEvent(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkEvent(&e); err != nil {
		return fmt.Errorf("add event: %w", err)
	}
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("add event: %w", err)
	}
	return b.batch("add event for "+e.Node, func(tx *bolt.Tx) error {
		log, err := tx.Bucket(bucketEvents).CreateBucketIfNotExists([]byte(e.Node))
		if err != nil {
			return err
		}
		seq, err := log.NextSequence()
		if err != nil {
			return err
		}
		if err := log.Put(seqKey(seq), data); err != nil {
			return err
		}
		return trim(log, seq, b.eventLimit)
	})
}

// trim deletes the oldest events of a log whose newest is last until limit remain.
// Sequences in a log are contiguous (only the oldest are ever deleted).
func trim(log *bolt.Bucket, last uint64, limit int) error {
	first, _ := log.Cursor().First()
	if first == nil {
		return nil
	}
	excess := int64(last-binary.BigEndian.Uint64(first)) + 1 - int64(limit)
	for seq := binary.BigEndian.Uint64(first); excess > 0; seq, excess = seq+1, excess-1 {
		if err := log.Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	return nil
}

// seqKey encodes an event sequence number as a sortable 8-byte key.
func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// Events returns the newest limit events of node (all kept when limit <= 0), oldest first.
func (b *Bolt) Events(ctx context.Context, node string, limit int) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Event
	err := b.db.View(func(tx *bolt.Tx) error {
		log := tx.Bucket(bucketEvents).Bucket([]byte(node))
		if log == nil {
			return nil
		}
		c := log.Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, e)
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, b.wrap("read events of "+node, err)
}
