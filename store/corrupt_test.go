package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// scratch is a directory for many small database files: on tmpfs when the
// machine has one (fsync is free there; durability is not what these tests
// check), else the test's temp dir.
func scratch(t testing.TB) string {
	t.Helper()
	if d, err := os.MkdirTemp("/dev/shm", "racklet-store-"); err == nil {
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	return t.TempDir()
}

// stateCounts is how many records makeState writes.
type stateCounts struct{ leases, nodes, events int }

// makeState writes a state database shaped like a rack's: leases, nodes,
// event logs (some with details large enough for overflow pages), so that
// it has branch, leaf, overflow, inline-bucket and freelist pages.
func makeState(t testing.TB, path string) stateCounts {
	t.Helper()
	st, err := OpenBolt(path, BoltOptions{EventLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var c stateCounts
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 200 {
		l := Lease{MAC: fmt.Sprintf("dc:a6:32:00:%02x:%02x", i/256, i%256), Addr: netip.AddrFrom4([4]byte{10, 0, byte(i / 200), byte(i%200 + 20)}),
			Node: fmt.Sprintf("pi-%03d", i), Expiry: exp, State: "bound"}
		if err := st.PutLease(ctx, l); err != nil {
			t.Fatal(err)
		}
		c.leases++
	}
	for i := range 100 {
		n := Node{Key: fmt.Sprintf("pi-%03d", i), Name: fmt.Sprintf("pi-%03d", i), MAC: fmt.Sprintf("dc:a6:32:00:00:%02x", i),
			Serial: fmt.Sprintf("%08x", 0x5b150000+i), Kind: "rpi4", Addr: fmt.Sprintf("10.0.0.%d", i+20), FirstSeen: exp, LastSeen: exp, Known: true}
		if err := st.PutNode(ctx, n); err != nil {
			t.Fatal(err)
		}
		c.nodes++
	}
	for i := range 30 {
		node := fmt.Sprintf("pi-%03d", i)
		for j := range 25 { // 25 appended, 20 kept: the log was trimmed (freed pages)
			detail := fmt.Sprintf("file kernel8.img bytes %d", j)
			if i%10 == 0 && j%8 == 0 {
				detail = strings.Repeat("console line of a failed boot; ", 200) // ~6 KiB: overflow pages
			}
			if err := st.AddEvent(ctx, Event{Time: exp, Node: node, Type: "tftp.get", Detail: detail}); err != nil {
				t.Fatal(err)
			}
		}
		c.events += 20
	}
	if err := st.AddEvent(ctx, Event{Time: exp, Node: "mac:dc:a6:32:99:99:99", Type: "dhcp.discover"}); err != nil {
		t.Fatal(err)
	}
	c.events++
	return c
}

// readAll reads every record through the store API; the error is the first
// read that failed.
func readAll(ctx context.Context, st *Bolt) (int, error) {
	n := 0
	ls, err := st.Leases(ctx)
	if err != nil {
		return n, err
	}
	n += len(ls)
	nodes, err := st.Nodes(ctx)
	if err != nil {
		return n, err
	}
	n += len(nodes)
	keys := []string{"mac:dc:a6:32:99:99:99"}
	for _, nd := range nodes {
		keys = append(keys, nd.Key)
		if _, _, err := st.Node(ctx, nd.Key); err != nil {
			return n, err
		}
	}
	for _, k := range keys {
		es, err := st.Events(ctx, k, 0)
		if err != nil {
			return n, err
		}
		n += len(es)
	}
	return n, nil
}

// garble damages one page of the file at path in one of five ways.
func garble(t testing.TB, rnd *rand.Rand, path string, psize int) (page int, how string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	page = rnd.IntN(len(data) / psize)
	p := data[page*psize : (page+1)*psize]
	switch mode := rnd.IntN(5); mode {
	case 0:
		n := 1 + rnd.IntN(64)
		off := rnd.IntN(psize - n)
		for i := range n {
			p[off+i] = byte(rnd.Uint32())
		}
		how = fmt.Sprintf("%d random bytes at %d", n, off)
	case 1:
		bit := rnd.IntN(psize * 8)
		p[bit/8] ^= 1 << (bit % 8)
		how = fmt.Sprintf("bit %d flipped", bit)
	case 2:
		clear(p)
		how = "zeroed"
	case 3:
		for i := range p {
			p[i] = byte(rnd.Uint32())
		}
		how = "random"
	case 4:
		for i := range 16 {
			p[i] = byte(rnd.Uint32())
		}
		how = "random page header"
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return page, how
}

// TestGarbledPages damages one page of a rack-shaped state.db in 1,000
// random ways and uses each copy as racklet-boot would: open, read every
// record, write. Nothing may panic; every failure must be an error wrapping
// ErrCorrupt that names `racklet-boot state repair`; Check must report
// what the store tripped over; and Repair must always produce a file that
// opens and reads cleanly.
func TestGarbledPages(t *testing.T) {
	dir := scratch(t)
	orig := filepath.Join(dir, "orig.db")
	counts := makeState(t, orig)
	total := counts.leases + counts.nodes + counts.events
	clean, err := Check(orig, time.Second)
	if err != nil {
		t.Fatalf("Check of an undamaged file: %v", err)
	}
	t.Logf("state.db: %d pages of %d bytes, %d records", clean.Pages, clean.PageSize, total)
	good, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	const trials = 1000
	rnd := rand.New(rand.NewPCG(14, 6))
	var panics, refused, readErrs, unharmed, repaired, kept int
	ctx := context.Background()
	start := time.Now()
	for i := range trials {
		path := filepath.Join(dir, fmt.Sprintf("state-%d.db", i))
		if err := os.WriteFile(path, good, 0o600); err != nil {
			t.Fatal(err)
		}
		page, how := garble(t, rnd, path, clean.PageSize)
		where := fmt.Sprintf("trial %d, page %d %s", i, page, how)
		_, checkErr := Check(path, time.Second)
		if checkErr != nil && !errors.Is(checkErr, ErrCorrupt) {
			t.Fatalf("%s: Check: %v, want ErrCorrupt", where, checkErr)
		}
		outcome, err := useDamaged(ctx, path)
		switch {
		case outcome == "panic":
			panics++
			t.Errorf("%s: %v", where, err)
		case err != nil && (!errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "racklet-boot state repair")):
			t.Errorf("%s: %s: %v; want an error wrapping ErrCorrupt naming the repair command", where, outcome, err)
		case err != nil && checkErr == nil:
			t.Errorf("%s: the store failed (%v) but Check found nothing", where, err)
		case outcome == "refused":
			refused++
		case err != nil:
			readErrs++
		default:
			unharmed++
		}
		if err == nil && checkErr == nil {
			os.Remove(path)
			continue
		}
		repaired++
		rep, err := Repair(path, time.Second)
		if err != nil {
			t.Fatalf("%s: Repair: %v", where, err)
		}
		st, err := OpenBolt(path, BoltOptions{})
		if err != nil {
			t.Fatalf("%s: the repaired file does not open: %v", where, err)
		}
		n, err := readAll(ctx, st)
		st.Close()
		if err != nil {
			t.Fatalf("%s: the repaired file does not read: %v", where, err)
		}
		kept += n
		os.Remove(path)
		os.Remove(rep.Old)
	}
	t.Logf("%d garbled copies in %s: %d panics, %d refused at open, %d failed a read, %d harmless (a torn meta page bbolt recovers from, a free page or unused bytes, a byte inside a string: bbolt has no page checksums); repairing the %d damaged ones kept %.1f%% of their records on average",
		trials, time.Since(start).Round(time.Millisecond), panics, refused, readErrs, unharmed, repaired, 100*float64(kept)/float64(max(repaired, 1)*total))
}

// useDamaged opens, reads and writes a damaged store as racklet-boot would,
// catching any panic.
func useDamaged(ctx context.Context, path string) (outcome string, err error) {
	defer func() {
		if r := recover(); r != nil {
			outcome, err = "panic", fmt.Errorf("panic: %v", r)
		}
	}()
	st, err := OpenBolt(path, BoltOptions{OpenTimeout: time.Second})
	if err != nil {
		return "refused", err
	}
	defer st.Close()
	if _, err := readAll(ctx, st); err != nil {
		return "read", err
	}
	if err := st.PutLease(ctx, Lease{MAC: "dc:a6:32:ff:ff:ff", Addr: netip.MustParseAddr("10.0.9.9")}); err != nil {
		return "write", err
	}
	if err := st.AddEvent(ctx, Event{Node: "pi-000", Type: "dhcp.ack"}); err != nil {
		return "write", err
	}
	return "ok", nil
}

// TestRepairKeepsWhatIsReadable: a zeroed page loses only the records on
// it; the rest come back, the damaged file stays beside the new one, and
// the event logs continue their sequence.
func TestRepairKeepsWhatIsReadable(t *testing.T) {
	dir := scratch(t)
	path := filepath.Join(dir, DefaultFileName)
	counts := makeState(t, path)
	rep, err := Check(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// Zero the root page of the nodes bucket: every node record is on it
	// or below it.
	data, _ := os.ReadFile(path)
	w, _, _, _ := inspect(data)
	var nodePage uint64
	for id := uint64(2); id < rep.Pages; id++ {
		p := data[int(id)*rep.PageSize:]
		if p[8] == flagLeaf && strings.Contains(string(p[:rep.PageSize]), `"serial":"5b150000"`) {
			nodePage = id
			break
		}
	}
	if nodePage == 0 || len(w.records) == 0 {
		t.Fatal("no leaf page holds node pi-000")
	}
	clear(data[int(nodePage)*rep.PageSize : int(nodePage+1)*rep.PageSize])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(path, BoltOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("OpenBolt of a file with a zeroed page: %v, want ErrCorrupt", err)
	}
	if crep, err := Check(path, time.Second); !errors.Is(err, ErrCorrupt) || len(crep.Problems) == 0 {
		t.Fatalf("Check = %v, want ErrCorrupt with problems", err)
	}
	rr, err := Repair(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("repair kept %v, dropped %d, damaged file %s", rr.Kept, len(rr.Dropped), filepath.Base(rr.Old))
	if rr.Kept["leases"] != counts.leases || rr.Kept["events"] != counts.events || rr.Kept["nodes"] == 0 || rr.Kept["nodes"] >= counts.nodes {
		t.Errorf("kept %v; want every lease and event and the nodes not on page %d", rr.Kept, nodePage)
	}
	if _, err := os.Stat(rr.Old); err != nil {
		t.Errorf("the damaged file is gone: %v", err)
	}
	st, err := OpenBolt(path, BoltOptions{EventLimit: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.AddEvent(ctx, Event{Node: "pi-001", Type: "dhcp.ack"}); err != nil {
		t.Fatal(err)
	}
	es, err := st.Events(ctx, "pi-001", 0)
	if err != nil || len(es) != 20 || es[len(es)-1].Type != "dhcp.ack" {
		t.Errorf("events after repair and one append: %d, %v; want 20 (the limit), the new one last", len(es), err)
	}
}

// TestCheckWhileServing: Check and Repair wait for the lock of a running
// store instead of reading a file being written.
func TestCheckWhileServing(t *testing.T) {
	path := filepath.Join(scratch(t), DefaultFileName)
	st, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := Check(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("Check of a file in use: %v, want ErrLocked", err)
	}
	if _, err := Repair(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("Repair of a file in use: %v, want ErrLocked", err)
	}
}

// BenchmarkValidate prices the page validation OpenBolt now runs before
// bbolt opens a file: a state.db of 500 nodes with 100 events each, read
// and walked in full.
func BenchmarkValidate(b *testing.B) {
	path := filepath.Join(scratch(b), DefaultFileName)
	st, err := OpenBolt(path, BoltOptions{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for i := range 500 {
		node := fmt.Sprintf("pi-%03d", i)
		if err := st.PutNode(ctx, Node{Key: node, Name: node}); err != nil {
			b.Fatal(err)
		}
		for range 100 {
			if err := st.AddEvent(ctx, Event{Node: node, Type: "tftp.get", Detail: "file kernel8.img"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	st.Close()
	fi, _ := os.Stat(path)
	b.Run("validate", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			data, err := readLocked(path, time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if problems := validate(data); len(problems) > 0 {
				b.Fatal(problems)
			}
		}
	})
	// The peer: bbolt opening the file and visiting every record once.
	b.Run("bbolt-read-all", func(b *testing.B) {
		b.SetBytes(fi.Size())
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			err = db.View(func(tx *bolt.Tx) error {
				var visit func(bk *bolt.Bucket) error
				visit = func(bk *bolt.Bucket) error {
					return bk.ForEach(func(k, v []byte) error {
						if v == nil {
							return visit(bk.Bucket(k))
						}
						return nil
					})
				}
				return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error { return visit(bk) })
			})
			db.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
