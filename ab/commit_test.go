package ab

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/store"
)

// slowJournal is a Memory journal whose writes take a while (an fsync) and
// can be made to fail; it counts them.
type slowJournal struct {
	*store.Memory
	delay  time.Duration
	fail   atomic.Bool
	writes atomic.Int64
}

func (j *slowJournal) PutRecords(ctx context.Context, recs ...store.Record) error {
	j.writes.Add(1)
	time.Sleep(j.delay)
	if j.fail.Load() {
		return errors.New("disk full")
	}
	return j.Memory.PutRecords(ctx, recs...)
}

// TestGroupCommit: 50 nodes report at once; their transitions share journal
// writes, and each caller returns only once its own is durable.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	j := &slowJournal{Memory: store.NewMemory(), delay: 5 * time.Millisecond}
	m, err := Open(ctx, j, WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]Image{}
	var as []Assignment
	for i := range 50 {
		name := fmt.Sprintf("pi-%02d", i)
		nodes[name] = imgA
		as = append(as, Assignment{Node: name, Image: imgB})
	}
	if err := m.Ensure(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Assign(ctx, as); err != nil {
		t.Fatal(err)
	}
	before := j.writes.Load()
	var wg sync.WaitGroup
	errs := make(chan error, len(as))
	for _, a := range as {
		wg.Go(func() {
			_, err := m.Report(ctx, a.Node, Report{Image: imgB.Digest, Healthy: true})
			if err == nil {
				if n, _ := m.Node(a.Node); n.State != StateCommitted { // durable and visible on return
					err = fmt.Errorf("%s is %s after its report returned", a.Node, n.State)
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if w := j.writes.Load() - before; w >= 25 {
		t.Errorf("50 reports took %d journal writes, want them shared", w)
	}
	recs, _ := j.Records(ctx, KeyPrefix)
	for _, r := range recs {
		if n, _ := m.Node(r.Key[len(KeyPrefix):]); n.Seq != r.Seq {
			t.Errorf("%s: journal at transition %d, memory at %d", r.Key, r.Seq, n.Seq)
		}
	}
}

// TestFailedWrite: a transition whose journal write fails changes nothing,
// and the next one is computed from the durable state.
func TestFailedWrite(t *testing.T) {
	ctx := context.Background()
	j := &slowJournal{Memory: store.NewMemory()}
	m, err := Open(ctx, j, WithClock(func() time.Time { return t0 }))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(ctx, map[string]Image{"pi-01": imgA}); err != nil {
		t.Fatal(err)
	}
	j.fail.Store(true)
	if _, err := m.Assign(ctx, []Assignment{{Node: "pi-01", Image: imgB}}); err == nil {
		t.Fatal("assign succeeded with a failing journal")
	}
	if d, _ := m.Boot("pi-01"); d.Trial {
		t.Fatalf("a failed write took effect: %+v", d)
	}
	j.fail.Store(false)
	acts, err := m.Assign(ctx, []Assignment{{Node: "pi-01", Image: imgC}})
	if err != nil || len(acts) != 1 || acts[0].Seq != 2 {
		t.Fatalf("assign after the failure: %v, %v; want one action at transition 2", acts, err)
	}
}
