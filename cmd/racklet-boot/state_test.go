package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/store"
)

func runCmd(args ...string) (string, error) {
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestStateCheckRepair damages a page of a data directory's state.db and
// walks the operator's way out: serve's store refuses it with a message
// naming the commands, check lists the damage, repair rebuilds the file and
// keeps the old one, check is then clean and the store opens.
func TestStateCheckRepair(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, store.DefaultFileName)
	st, err := store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 300 {
		if err := st.PutLease(ctx, store.Lease{MAC: fmt.Sprintf("dc:a6:32:00:%02x:%02x", i/256, i%256),
			Addr: netip.AddrFrom4([4]byte{10, 0, byte(i / 250), byte(i%250 + 1)}), State: "bound"}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if out, err := runCmd("state", "check", "--data-dir", dir); err != nil || !strings.Contains(out, "leases  300 readable") {
		t.Fatalf("check of a good file: %v\n%s", err, out)
	}
	data, _ := os.ReadFile(path)
	for i := 2 * 4096; i < 3*4096; i++ { // page 2: the first page after the metas
		data[i] = 0xA5
	}
	os.WriteFile(path, data, 0o600)
	if _, err := store.OpenBolt(path, store.BoltOptions{}); err == nil || !strings.Contains(err.Error(), "racklet-boot state repair --data-dir "+dir) {
		t.Errorf("OpenBolt of a damaged file: %v, want the repair command", err)
	}
	out, err := runCmd("state", "check", "--data-dir", dir)
	if err == nil || !strings.Contains(out, "damaged: ") {
		t.Errorf("check of a damaged file: %v\n%s", err, out)
	}
	t.Logf("state check:\n%s%v", out, err)
	out, err = runCmd("state", "repair", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "the previous file is "+path+".damaged-") {
		t.Fatalf("repair: %v\n%s", err, out)
	}
	t.Logf("state repair:\n%s", out)
	if out, err := runCmd("state", "check", "--data-dir", dir); err != nil || !strings.Contains(out, "no damage found") {
		t.Errorf("check after repair: %v\n%s", err, out)
	}
	st, err = store.OpenBolt(path, store.BoltOptions{})
	if err != nil {
		t.Fatalf("open after repair: %v", err)
	}
	st.Close()
}
