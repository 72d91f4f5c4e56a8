package verifier_test

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/hatlink"
)

// claims is a pending list in memory.
type claims struct {
	mu sync.Mutex
	m  map[string][]string // node → keys
}

func (c *claims) Claimed(_ context.Context, node string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.m[node]), nil
}

func (c *claims) Claim(_ context.Context, node, key, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]string{}
	}
	c.m[node] = append(c.m[node], key)
	return nil
}

func (c *claims) of(node string) []string { k, _ := c.Claimed(context.Background(), node); return k }

// TestEnrolmentModes: a config node without a trusted key, quoted for by
// its own HAT and then by another, under each enrolment mode.
func TestEnrolmentModes(t *testing.T) {
	tests := []struct {
		mode verifier.Enrolment
		// want for the first quote (own HAT) and the second (another HAT)
		first, second error
		claims        int  // keys pending afterwards
		enrolled      bool // the own HAT's key is trusted afterwards
	}{
		{verifier.Preprovisioned, verifier.ErrNotEnrolled, verifier.ErrNotEnrolled, 0, false},
		{"", verifier.ErrNotEnrolled, verifier.ErrNotEnrolled, 0, false},
		{verifier.Approve, verifier.ErrPending, verifier.ErrPending, 2, false},
		{verifier.TOFU, nil, verifier.ErrWrongKey, 0, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			r := newRig(t)
			ctx := t.Context()
			c := &claims{}
			r.v.SetEnrolment(tc.mode)
			r.v.Claims = c
			if err := r.v.Revoke(ctx, "pi-01"); err != nil {
				t.Fatal(err)
			}
			r.boot(t, "pi-01", imageA)
			r.boot(t, "pi-02", imageA)
			_, err := r.v.Verify(ctx, r.quote(t, "pi-01", "pi-01"))
			if tc.first == nil && err != nil {
				t.Fatalf("first key under %s: %v", tc.mode, err)
			} else if tc.first != nil {
				refused(t, err, tc.first)
			}
			_, err = r.v.Verify(ctx, r.quote(t, "pi-01", "pi-02"))
			refused(t, err, tc.second)
			if got := len(c.of("pi-01")); got != tc.claims {
				t.Errorf("%d keys pending for pi-01, want %d", got, tc.claims)
			}
			e, ok, _ := r.v.Enrollments.Enrollment(ctx, "pi-01")
			own := hatlink.EncodeKey(r.devs["pi-01"].Identity().SignKey)
			if got := ok && e.Key == own && e.State == attest.Approved; got != tc.enrolled {
				t.Errorf("pi-01 enrolled with its own key: %v, want %v (%+v)", got, tc.enrolled, e)
			}
			if tc.mode == verifier.Approve {
				// The second key is a conflict in the node's timeline, never a replacement.
				if ev := r.ev.last(); ev.Type != "attest.refused" {
					t.Errorf("last event %+v", ev)
				}
				found := false
				for _, ev := range r.ev.all {
					found = found || ev.Type == "enrol.conflict"
				}
				if !found {
					t.Error("no enrol.conflict event for the second key")
				}
				// Once the operator enrolls the right key, it attests.
				if _, err := r.v.Enroll(ctx, "pi-01", own); err != nil {
					t.Fatal(err)
				}
				if _, err := r.v.Verify(ctx, r.quote(t, "pi-01", "pi-01")); err != nil {
					t.Errorf("after enrolment: %v", err)
				}
			}
		})
	}
}

// TestTOFUWithAPendingKey: under tofu, a node whose key is already pending
// (an earlier conflict) gets no key on first use: the new one waits too.
func TestTOFUWithAPendingKey(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	c := &claims{m: map[string][]string{"pi-01": {"ed25519:someone-else"}}}
	r.v.SetEnrolment(verifier.TOFU)
	r.v.Claims = c
	r.v.Revoke(ctx, "pi-01")
	r.boot(t, "pi-01", imageA)
	_, err := r.v.Verify(ctx, r.quote(t, "pi-01", "pi-01"))
	refused(t, err, verifier.ErrPending)
	if _, ok, _ := r.v.Enrollments.Enrollment(ctx, "pi-01"); ok {
		t.Error("tofu enrolled a key while another was pending")
	}
}

// TestClaimNeedsTheKeysSignature: a quote naming a key it was not signed
// with claims nothing.
func TestClaimNeedsTheKeysSignature(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	c := &claims{}
	r.v.SetEnrolment(verifier.Approve)
	r.v.Claims = c
	r.v.Revoke(ctx, "pi-01")
	r.boot(t, "pi-02", imageA)
	q := r.quote(t, "pi-01", "pi-02")
	q.Key = hatlink.EncodeKey(r.devs["pi-01"].Identity().SignKey)
	_, err := r.v.Verify(ctx, q)
	refused(t, err, verifier.ErrWrongKey)
	if len(c.of("pi-01")) != 0 {
		t.Error("a key was claimed by a quote it did not sign")
	}
}

// TestNoncesPerNodeAndClient: one node's challenges never evict another's
// nonce, and another client's challenges for a node never evict the
// node's own.
func TestNoncesPerNodeAndClient(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	r.boot(t, "pi-01", imageA)
	r.boot(t, "pi-02", imageA)
	node := netip.MustParseAddr("10.0.0.11")
	r.v.NodeAddr = func(_ context.Context, n string) (netip.Addr, bool) { return node, n == "pi-01" }
	ch1, err := r.v.ChallengeFrom(ctx, "pi-01", node)
	if err != nil {
		t.Fatal(err)
	}
	ch2, _ := r.v.ChallengeFrom(ctx, "pi-02", netip.MustParseAddr("10.0.0.12"))
	// An attacker asks for many challenges: for pi-02 from one address,
	// for pi-01 from 20 addresses.
	for i := range 1000 {
		r.v.ChallengeFrom(ctx, "pi-02", netip.MustParseAddr("10.0.0.66"))
		r.v.ChallengeFrom(ctx, "pi-01", netip.AddrFrom4([4]byte{10, 0, 1, byte(i % 20)}))
	}
	if _, err := r.v.Verify(ctx, r.quoteNonce(t, "pi-01", "pi-01", [32]byte(ch1.Nonce))); err != nil {
		t.Errorf("pi-01's nonce was evicted: %v", err)
	}
	if _, err := r.v.Verify(ctx, r.quoteNonce(t, "pi-02", "pi-02", [32]byte(ch2.Nonce))); err != nil {
		t.Errorf("pi-02's nonce was evicted: %v", err)
	}
	// A client's own older nonces go past its bound.
	first, _ := r.v.ChallengeFrom(ctx, "pi-01", node)
	for range 3 {
		r.v.ChallengeFrom(ctx, "pi-01", node)
	}
	_, err = r.v.Verify(ctx, r.quoteNonce(t, "pi-01", "pi-01", [32]byte(first.Nonce)))
	refused(t, err, verifier.ErrNonceUnknown)
}

func TestChallengeOnlyForConfigNodes(t *testing.T) {
	r := newRig(t)
	if _, err := r.v.Challenge(t.Context(), "pi-99"); err == nil {
		t.Error("a node missing from the config got a nonce")
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

// TestUnknownNodesLeaveNothing: quotes for names the config lacks record
// no claim, enrolment or event, in every mode.
func TestUnknownNodesLeaveNothing(t *testing.T) {
	for _, mode := range []verifier.Enrolment{verifier.Preprovisioned, verifier.Approve, verifier.TOFU} {
		r := newRig(t)
		c := &claims{}
		r.v.SetEnrolment(mode)
		r.v.Claims = c
		r.boot(t, "pi-01", imageA)
		for range 100 {
			q := r.quote(t, "pi-01", "pi-01")
			q.Node = "pi-99"
			_, err := r.v.Verify(t.Context(), q)
			refused(t, err, verifier.ErrUnknownNode)
		}
		if _, ok, _ := r.v.Enrollments.Enrollment(t.Context(), "pi-99"); ok || len(c.m) != 0 || len(r.ev.all) != 0 {
			t.Errorf("%s: a node missing from the config left state: enrolled %v, claims %v, events %d", mode, ok, c.m, len(r.ev.all))
		}
	}
}
