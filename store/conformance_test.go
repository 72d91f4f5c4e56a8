package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// backends opens each Store implementation with an event limit of 3.
func backends(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"memory": func(t *testing.T) Store { return NewMemoryLimit(3) },
		"bolt": func(t *testing.T) Store {
			b, err := OpenBolt(filepath.Join(t.TempDir(), "state.db"), BoltOptions{EventLimit: 3})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

var (
	t0    = time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC)
	addr1 = netip.MustParseAddr("10.0.0.101")
	addr2 = netip.MustParseAddr("10.0.0.102")
)

// cmpOpts compares values that went through JSON with those that did not.
var cmpOpts = []cmp.Option{
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmpopts.EquateEmpty(),
}

func ev(node string, i int) Event {
	return Event{Time: t0.Add(time.Duration(i) * time.Second), Node: node, Type: "tftp.get", Detail: fmt.Sprintf("file-%d", i), Bytes: int64(i)}
}

// TestConformance runs one table of operations, in order, against every backend.
func TestConformance(t *testing.T) {
	steps := []struct {
		name    string
		do      func(ctx context.Context, s Store) (any, error)
		want    any
		wantErr error
	}{
		{"no leases yet", func(ctx context.Context, s Store) (any, error) { return s.Leases(ctx) }, []Lease(nil), nil},
		{"put lease with upper-case mac", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: "DC:A6:32:00:00:02", Addr: addr1, Expiry: t0, State: "offered"})
		}, nil, nil},
		{"replace it", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: "dc-a6-32-00-00-02", Addr: addr2, Node: "pi-02", Expiry: t0.Add(time.Hour), State: "bound"})
		}, nil, nil},
		{"another lease", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: "dc:a6:32:00:00:01", Addr: addr1, Expiry: t0, State: "bound"})
		}, nil, nil},
		{"leases normalised and ordered by mac", func(ctx context.Context, s Store) (any, error) { return s.Leases(ctx) }, []Lease{
			{MAC: "dc:a6:32:00:00:01", Addr: addr1, Expiry: t0, State: "bound"},
			{MAC: "dc:a6:32:00:00:02", Addr: addr2, Node: "pi-02", Expiry: t0.Add(time.Hour), State: "bound"},
		}, nil},
		{"lease with a bad mac", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: "nope", Addr: addr1})
		}, nil, ErrInvalid},
		{"lease without address", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: "dc:a6:32:00:00:03"})
		}, nil, ErrInvalid},
		{"quarantine an address", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: DeclinedPrefix + addr1.String(), Addr: addr1, Expiry: t0, State: "declined"})
		}, nil, nil},
		{"quarantine key naming another address", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: DeclinedPrefix + addr2.String(), Addr: addr1, State: "declined"})
		}, nil, ErrInvalid},
		{"quarantine key without an address", func(ctx context.Context, s Store) (any, error) {
			return nil, s.PutLease(ctx, Lease{MAC: DeclinedPrefix + "nope", Addr: addr1, State: "declined"})
		}, nil, ErrInvalid},
		{"quarantine kept beside the leases", func(ctx context.Context, s Store) (any, error) { return s.Leases(ctx) }, []Lease{
			{MAC: "dc:a6:32:00:00:01", Addr: addr1, Expiry: t0, State: "bound"},
			{MAC: "dc:a6:32:00:00:02", Addr: addr2, Node: "pi-02", Expiry: t0.Add(time.Hour), State: "bound"},
			{MAC: DeclinedPrefix + addr1.String(), Addr: addr1, Expiry: t0, State: "declined"},
		}, nil},
		{"quarantine lifted", func(ctx context.Context, s Store) (any, error) {
			return nil, s.DeleteLease(ctx, DeclinedPrefix+addr1.String())
		}, nil, nil},
		{"delete a lease by another spelling", func(ctx context.Context, s Store) (any, error) {
			return nil, s.DeleteLease(ctx, "DC-A6-32-00-00-01")
		}, nil, nil},
		{"delete a missing lease", func(ctx context.Context, s Store) (any, error) { return nil, s.DeleteLease(ctx, "02:00:00:00:00:09") }, nil, nil},
		{"one lease left", func(ctx context.Context, s Store) (any, error) { return s.Leases(ctx) }, []Lease{
			{MAC: "dc:a6:32:00:00:02", Addr: addr2, Node: "pi-02", Expiry: t0.Add(time.Hour), State: "bound"},
		}, nil},
		{"put nodes", func(ctx context.Context, s Store) (any, error) {
			return nil, errors.Join(
				s.PutNode(ctx, Node{Key: "pi-02", Name: "pi-02", Serial: "5b154510", Kind: "rpi4", Arch: 0, FirstSeen: t0, LastSeen: t0, Known: true}),
				s.PutNode(ctx, Node{Key: "mac:52:54:00:00:00:01", MAC: "52:54:00:00:00:01", Kind: "ipxe", Arch: 7, FirstSeen: t0, LastSeen: t0}),
				s.PutNode(ctx, Node{Key: "pi-02", Name: "pi-02", Serial: "5b154510", Kind: "rpi4", FirstSeen: t0, LastSeen: t0.Add(time.Minute), Known: true}))
		}, nil, nil},
		{"get a node", func(ctx context.Context, s Store) (any, error) {
			n, ok, err := s.Node(ctx, "pi-02")
			return fmt.Sprintf("%v %v %s", ok, n.LastSeen.Equal(t0.Add(time.Minute)), n.Serial), err
		}, "true true 5b154510", nil},
		{"missing node", func(ctx context.Context, s Store) (any, error) {
			n, ok, err := s.Node(ctx, "pi-99")
			return fmt.Sprint(ok, n.Key == ""), err
		}, "false true", nil},
		{"nodes ordered by key", func(ctx context.Context, s Store) (any, error) {
			ns, err := s.Nodes(ctx)
			var keys []string
			for _, n := range ns {
				keys = append(keys, n.Key)
			}
			return keys, err
		}, []string{"mac:52:54:00:00:00:01", "pi-02"}, nil},
		{"node without key", func(ctx context.Context, s Store) (any, error) { return nil, s.PutNode(ctx, Node{Name: "x"}) }, nil, ErrInvalid},
		{"five events", func(ctx context.Context, s Store) (any, error) {
			var errs []error
			for i := 1; i <= 5; i++ {
				errs = append(errs, s.AddEvent(ctx, ev("pi-02", i)))
			}
			return nil, errors.Join(append(errs, s.AddEvent(ctx, ev("other", 9)))...)
		}, nil, nil},
		{"only the newest 3 kept, oldest first", func(ctx context.Context, s Store) (any, error) { return s.Events(ctx, "pi-02", 0) },
			[]Event{ev("pi-02", 3), ev("pi-02", 4), ev("pi-02", 5)}, nil},
		{"limit 2 gives the newest 2", func(ctx context.Context, s Store) (any, error) { return s.Events(ctx, "pi-02", 2) },
			[]Event{ev("pi-02", 4), ev("pi-02", 5)}, nil},
		{"logs are per node", func(ctx context.Context, s Store) (any, error) { return s.Events(ctx, "other", 10) },
			[]Event{ev("other", 9)}, nil},
		{"no events for an unknown node", func(ctx context.Context, s Store) (any, error) { return s.Events(ctx, "nobody", 0) }, []Event(nil), nil},
		{"empty keys find nothing", func(ctx context.Context, s Store) (any, error) {
			es, err1 := s.Events(ctx, "", 0)
			_, ok, err2 := s.Node(ctx, "")
			return fmt.Sprintf("%d %v", len(es), ok), errors.Join(err1, err2)
		}, "0 false", nil},
		{"event without node", func(ctx context.Context, s Store) (any, error) { return nil, s.AddEvent(ctx, Event{Type: "x"}) }, nil, ErrInvalid},
		{"event without time is stamped", func(ctx context.Context, s Store) (any, error) {
			before := time.Now().Add(-time.Second)
			if err := s.AddEvent(ctx, Event{Node: "stamp", Type: "dhcp.discover"}); err != nil {
				return nil, err
			}
			es, err := s.Events(ctx, "stamp", 1)
			return len(es) == 1 && es[0].Time.After(before), err
		}, true, nil},
		{"cancelled context", func(ctx context.Context, s Store) (any, error) {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return nil, s.PutLease(ctx, Lease{MAC: "dc:a6:32:00:00:05", Addr: addr1})
		}, nil, context.Canceled},
		{"closed store refuses writes", func(ctx context.Context, s Store) (any, error) {
			if err := s.Close(); err != nil {
				return nil, err
			}
			return nil, s.PutLease(ctx, Lease{MAC: "dc:a6:32:00:00:05", Addr: addr1})
		}, nil, ErrClosed},
		{"closed store refuses reads", func(ctx context.Context, s Store) (any, error) { return s.Events(ctx, "pi-02", 0) }, []Event(nil), ErrClosed},
	}
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s := open(t)
			defer s.Close()
			ctx := context.Background()
			for _, st := range steps {
				got, err := st.do(ctx, s)
				if !errors.Is(err, st.wantErr) {
					t.Fatalf("%s: error %v, want %v", st.name, err, st.wantErr)
				}
				if diff := cmp.Diff(st.want, got, cmpOpts...); st.wantErr == nil && diff != "" {
					t.Fatalf("%s: (-want +got):\n%s", st.name, diff)
				}
			}
		})
	}
}
