package enrol

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/rack"
)

func newKey(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var k [32]byte
	copy(k[:], pub)
	return hatlink.EncodeKey(k)
}

func TestApprove(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot")
	os.Mkdir(boot, 0o755)
	conf := "apiVersion: racklet.io/v1alpha1\nkind: Rack\nserver: {address: 10.0.0.2, dataDir: data}\ndhcp: {mode: proxy}\n" +
		"unknownMachines: discover\ndefault: {dir: boot}\nnodes:\n  - {name: pi-01, kind: rpi4, serial: 5b154510, boot: {dir: boot}}\n"
	cfg, err := rack.Parse([]byte(conf), filepath.Join(dir, "rack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(cfg.Server.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	k17, k18 := newKey(t), newKey(t)
	if isNew, err := b.Seen(Pending{Key: k17, Serial: "5b154517", MAC: "dc:a6:32:00:00:17", Kind: "rpi5"}); err != nil || !isNew {
		t.Fatal(isNew, err)
	}
	if isNew, _ := b.Seen(Pending{Key: k17, Serial: "5b154517"}); isNew {
		t.Error("a machine seen twice was new twice")
	}
	b.Seen(Pending{Key: k18, Serial: "5b154518"})
	fp := Fingerprint(k17)
	if p, err := b.Find(strings.TrimPrefix(fp, "SHA256:")[:10]); err != nil || p.Key != k17 || p.MAC != "dc:a6:32:00:00:17" {
		t.Fatalf("find by fingerprint prefix: %+v, %v", p, err)
	}
	if _, _, err := b.Approve(cfg, Approval{Ref: "5b154517", As: "pi-01"}); err == nil {
		t.Fatal("approved under the name of a config node")
	}
	n, merged, err := b.Approve(cfg, Approval{Ref: "5b154517", As: "pi-17", By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Kind != rack.KindRPi5 || n.HATKey != k17 || len(merged.Nodes) != 2 || merged.Nodes[1].Boot.Dir != boot {
		t.Fatalf("approved %+v, merged nodes %+v", n, merged.Nodes)
	}
	if _, _, err := b.Approve(cfg, Approval{Ref: "5b154518", As: "pi-17"}); err == nil {
		t.Fatal("two approvals under one name")
	}
	if _, _, err := b.Approve(cfg, Approval{Ref: "5b154518", As: "pi-18"}); err != nil {
		t.Fatal(err)
	}
	got, _, err := rack.LoadOverlay(cfg, b.OverlayPath())
	if err != nil || len(got.Nodes) != 3 {
		t.Fatalf("overlay reloaded: %v, %d nodes", err, len(got.Nodes))
	}
	b2, _ := Open(cfg.Server.DataDir)
	if l := b2.List(); len(l) != 0 {
		t.Errorf("still pending after approval: %+v", l)
	}
	if _, err := b2.Find("5b154517"); err == nil {
		t.Error("an approved machine is still pending")
	}
}

// TestClaimsConflict: two keys asking to be one config node are both kept
// and marked; only a whole fingerprint picks one; forgetting the node drops
// both; bounds hold.
func TestClaimsConflict(t *testing.T) {
	b, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	real, squatter := newKey(t), newKey(t)
	if err := b.Claim("pi-05", real, "5b154505"); err != nil {
		t.Fatal(err)
	}
	if p, err := b.Find("5b154505"); err != nil || p.Key != real || p.Conflict {
		t.Fatalf("one claim: %+v, %v", p, err)
	}
	if err := b.Claim("pi-05", squatter, "5b154505"); err != nil {
		t.Fatal(err)
	}
	if got := b.Claimed("pi-05"); len(got) != 2 {
		t.Fatalf("claimed %v, want both keys", got)
	}
	for _, p := range b.List() {
		if !p.Conflict || p.Node != "pi-05" {
			t.Errorf("%+v: want a conflict for pi-05", p)
		}
	}
	for _, ref := range []string{"5b154505", "pi-05", strings.TrimPrefix(Fingerprint(real), "SHA256:")[:12]} {
		if _, err := b.Find(ref); !errors.Is(err, ErrConflict) {
			t.Errorf("Find(%q) = %v, want a conflict error", ref, err)
		}
	}
	if p, err := b.Find(Fingerprint(real)); err != nil || p.Key != real {
		t.Errorf("Find(whole fingerprint) = %+v, %v", p, err)
	}
	if err := b.Claim("pi-06", real, "5b154505"); err == nil {
		t.Error("one key claimed two nodes")
	}
	if _, _, err := b.Approve(&rack.Config{}, Approval{Ref: Fingerprint(real), As: "pi-99"}); err == nil {
		t.Error("a claim for a config node was approved as a new machine")
	}
	for range maxClaimsPerNode - 2 {
		if err := b.Claim("pi-05", newKey(t), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Claim("pi-05", newKey(t), "x"); err == nil {
		t.Errorf("more than %d keys pending for one node", maxClaimsPerNode)
	}
	if err := b.ForgetNode("pi-05"); err != nil {
		t.Fatal(err)
	}
	if l := b.List(); len(l) != 0 {
		t.Errorf("after ForgetNode: %+v", l)
	}
}
