package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Defaults of OpenBolt's options.
const (
	DefaultEventLimit  = 256             // events kept per node
	DefaultOpenTimeout = 2 * time.Second // wait for the file lock
	// DefaultBatchDelay is how long a write waits for others to share its
	// commit (and fsync). It bounds the latency a lone write adds.
	DefaultBatchDelay = 2 * time.Millisecond
)

// Bucket names.
var (
	bucketLeases = []byte("leases") // MAC -> Lease JSON
	bucketNodes  = []byte("nodes")  // Node.Key -> Node JSON
	bucketEvents = []byte("events") // Node.Key -> bucket of 8-byte big-endian seq -> Event JSON
)

// BoltOptions tune OpenBolt; each zero field takes its default.
type BoltOptions struct {
	// EventLimit is how many events are kept per node (default
	// DefaultEventLimit); the oldest are dropped on append. Lowering it
	// trims each log on its next append.
	EventLimit int
	// OpenTimeout is how long OpenBolt waits for another process to release
	// the file lock (default DefaultOpenTimeout).
	OpenTimeout time.Duration
	// BatchDelay is how long a write waits to share its commit with
	// concurrent writes (default DefaultBatchDelay; bbolt's own is 10 ms).
	BatchDelay time.Duration
}

// Bolt is the Store backed by one bbolt file. Every write goes through
// DB.Batch: concurrent writers share one transaction and one fsync (group
// commit), and each call returns only after its commit is on disk.
type Bolt struct {
	db         *bolt.DB
	path       string
	eventLimit int

	writes  atomic.Int64 // write operations committed
	commits atomic.Int64 // transactions that carried them
	lastTx  atomic.Int64 // id of the last write transaction seen
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed, with its directory) the state database
// at path. If another process holds it, OpenBolt fails after the open timeout
// with an error naming the file and wrapping ErrLocked.
func OpenBolt(path string, o BoltOptions) (*Bolt, error) {
	if o.EventLimit == 0 {
		o.EventLimit = DefaultEventLimit
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = DefaultOpenTimeout
	}
	if o.BatchDelay == 0 {
		o.BatchDelay = DefaultBatchDelay
	}
	if o.EventLimit < 1 {
		return nil, fmt.Errorf("open state database %s: event limit %d: keep at least 1 event per node", path, o.EventLimit)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state database: create its directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.OpenTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open state database %s: waited %s for its lock: is another racklet-boot running with this data directory? %w",
			path, o.OpenTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	db.MaxBatchDelay = o.BatchDelay
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLeases, bucketNodes, bucketEvents} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state database %s: create buckets: %w", path, err)
	}
	return &Bolt{db: db, path: path, eventLimit: o.EventLimit}, nil
}

// Path returns the database file name.
func (b *Bolt) Path() string { return b.path }

// Close releases the file and its lock. Calls after Close return ErrClosed.
func (b *Bolt) Close() error {
	if err := b.db.Close(); err != nil {
		return fmt.Errorf("close state database %s: %w", b.path, err)
	}
	return nil
}

// BoltStats counts the group commit at work.
type BoltStats struct {
	Writes  int64 // write operations committed
	Commits int64 // write transactions (each one fsync) that carried them
}

// Stats reports how many writes were committed in how many transactions.
func (b *Bolt) Stats() BoltStats {
	return BoltStats{Writes: b.writes.Load(), Commits: b.commits.Load()}
}

// batch runs fn in a shared write transaction and waits for its commit.
func (b *Bolt) batch(op string, fn func(tx *bolt.Tx) error) error {
	err := b.db.Batch(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if id := int64(tx.ID()); b.lastTx.Swap(id) != id {
			b.commits.Add(1)
		}
		b.writes.Add(1)
		return nil
	})
	return b.wrap(op, err)
}

// wrap names the operation and the file, and maps bbolt's closed error to ErrClosed.
func (b *Bolt) wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("%s: %w", op, ErrClosed)
	case errors.Is(err, ErrInvalid):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s in %s: %w", op, b.path, err)
}

// DefaultFileName is the database file OpenBolt is given under the data
// directory (server.dataDir) by racklet-boot.
const DefaultFileName = "state.db"
