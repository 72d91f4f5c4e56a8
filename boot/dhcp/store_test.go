package dhcp

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/racklet/racklet-boot/store"
)

// testStore is store.Memory with failure injection for lease writes.
type testStore struct {
	*store.Memory
	fail atomic.Pointer[error]
}

func newTestStore() *testStore { return &testStore{Memory: store.NewMemory()} }

// errInjected is what a failing testStore returns.
var errInjected = errors.New("injected store failure")

// setFail makes PutLease and DeleteLease return err (nil: succeed again).
func (s *testStore) setFail(err error) {
	if err == nil {
		s.fail.Store(nil)
		return
	}
	s.fail.Store(&err)
}

func (s *testStore) failure() error {
	if p := s.fail.Load(); p != nil {
		return *p
	}
	return nil
}

// PutLease fails when told to, else stores l.
func (s *testStore) PutLease(ctx context.Context, l store.Lease) error {
	if err := s.failure(); err != nil {
		return err
	}
	return s.Memory.PutLease(ctx, l)
}

// DeleteLease fails when told to, else deletes the lease.
func (s *testStore) DeleteLease(ctx context.Context, mac string) error {
	if err := s.failure(); err != nil {
		return err
	}
	return s.Memory.DeleteLease(ctx, mac)
}

// lease returns the lease stored under key (a MAC or a declined key).
func (s *testStore) lease(key string) (store.Lease, bool) {
	ls, _ := s.Memory.Leases(context.Background())
	for _, l := range ls {
		if l.MAC == key {
			return l, true
		}
	}
	return store.Lease{}, false
}

// node returns the node record stored under key.
func (s *testStore) node(key string) store.Node {
	n, _, _ := s.Memory.Node(context.Background(), key)
	return n
}

// events returns every event recorded for node, oldest first.
func (s *testStore) events(node string) []store.Event {
	ev, _ := s.Memory.Events(context.Background(), node, 0)
	return ev
}
