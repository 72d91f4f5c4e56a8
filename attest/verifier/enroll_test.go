package verifier_test

import (
	"testing"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/hatlink"
)

func TestTrustOnFirstUse(t *testing.T) {
	r := newRig(t)
	r.v.TrustOnFirstUse = true
	ctx := t.Context()
	if err := r.v.Revoke(ctx, "pi-01"); err != nil {
		t.Fatal(err)
	}
	r.boot(t, "pi-01", imageA)
	_, err := r.v.Verify(ctx, r.quote(t, "pi-01", "pi-01"))
	refused(t, err, verifier.ErrPending)
	list, _ := r.v.Enrollments.ListEnrollments(ctx)
	if len(list) != 2 || list[0].Node != "pi-01" || list[0].State != attest.Pending || list[0].Serial != "pi-01" {
		t.Fatalf("enrollments = %+v, want pi-01 pending", list)
	}
	// Still pending: refused again; a different key for the pending node is refused outright.
	_, err = r.v.Verify(ctx, r.quote(t, "pi-01", "pi-01"))
	refused(t, err, verifier.ErrPending)
	if _, err := r.v.Approve(ctx, "pi-01", hatlink.EncodeKey(r.devs["pi-02"].Identity().SignKey)); err == nil {
		t.Error("approved a key other than the pending one")
	}
	if _, err := r.v.Approve(ctx, "pi-01", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := r.v.Verify(ctx, r.quote(t, "pi-01", "pi-01")); err != nil {
		t.Fatalf("after approval: %v", err)
	}
}

func TestNonceTableBounded(t *testing.T) {
	r := newRig(t)
	r.v.MaxNonces = 4
	r.boot(t, "pi-01", imageA)
	first := r.quote(t, "pi-01", "pi-01")
	for range 10 {
		if _, err := r.v.Challenge(t.Context(), "pi-01"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.v.Verify(t.Context(), first)
	refused(t, err, verifier.ErrNonceUnknown)
	if _, err := r.v.Verify(t.Context(), r.quote(t, "pi-01", "pi-01")); err != nil {
		t.Errorf("newest nonce refused: %v", err)
	}
}

func TestPreprovisionAndDataDir(t *testing.T) {
	dir := t.TempDir()
	enr, sec, err := verifier.OpenDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := &verifier.Verifier{Enrollments: enr, Secrets: sec}
	r := newRig(t)
	k1 := hatlink.EncodeKey(r.devs["pi-01"].Identity().SignKey)
	if err := v.Preprovision(t.Context(), map[string]string{"pi-01": k1}); err != nil {
		t.Fatal(err)
	}
	if err := v.Preprovision(t.Context(), map[string]string{"pi-02": "ed25519:bad"}); err == nil {
		t.Error("Preprovision accepted a malformed key")
	}
	again, _, err := verifier.OpenDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, ok, _ := again.Enrollment(t.Context(), "pi-01")
	if !ok || e.Key != k1 || e.State != attest.Approved {
		t.Errorf("after reopen: %+v %v, want pi-01 approved with its key", e, ok)
	}
	s1, _ := sec.Secrets(t.Context(), "pi-01")
	_, sec2, _ := verifier.OpenDataDir(dir)
	s2, _ := sec2.Secrets(t.Context(), "pi-01")
	if s1.JoinToken == "" || len(s1.DiskKey) != 32 || s1.JoinToken != s2.JoinToken || string(s1.DiskKey) != string(s2.DiskKey) {
		t.Errorf("node secrets not generated once and kept: %+v vs %+v", s1, s2)
	}
}

func TestTOFUIgnoresUnknownNodes(t *testing.T) {
	r := newRig(t)
	r.v.TrustOnFirstUse = true
	r.boot(t, "pi-01", imageA)
	_, err := r.v.Verify(t.Context(), r.quote(t, "pi-99", "pi-01"))
	refused(t, err, verifier.ErrUnknownNode)
	if _, ok, _ := r.v.Enrollments.Enrollment(t.Context(), "pi-99"); ok {
		t.Error("a node missing from the config got a pending enrollment")
	}
}
