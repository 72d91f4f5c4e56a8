package verifier_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/store"
)

func digest(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

var (
	imageA = attest.Measurements{Kernel: digest("kernel A"), Initramfs: digest("initrd A"), Cmdline: "console=ttyAMA0 root=/dev/dm-0", RootHash: digest("root A"), Image: "registry/os:a"}
	imageB = attest.Measurements{Kernel: digest("kernel B"), Initramfs: digest("initrd A"), Cmdline: "console=ttyAMA0 root=/dev/dm-0", RootHash: digest("root B"), Image: "registry/os:b"}
)

type events struct {
	mu  sync.Mutex
	all []store.Event
}

func (e *events) AddEvent(ctx context.Context, ev store.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
	return nil
}

func (e *events) last() store.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.all) == 0 {
		return store.Event{}
	}
	return e.all[len(e.all)-1]
}

// rig is a verifier with a fake clock, an enrollment file and two nodes
// (pi-01, pi-02) each with a simulated HAT.
type rig struct {
	v        *verifier.Verifier
	now      time.Time
	expected map[string]attest.Measurements
	ev       *events
	hats     map[string]*hatlink.Client
	devs     map[string]*hatsim.Device
	mu       sync.Mutex
}

func newRig(t testing.TB) *rig {
	t.Helper()
	dir := t.TempDir()
	enr, err := verifier.OpenEnrollmentFile(filepath.Join(dir, "enrollments.json"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ev: &events{},
		expected: map[string]attest.Measurements{"pi-01": imageA, "pi-02": imageA},
		hats:     map[string]*hatlink.Client{}, devs: map[string]*hatsim.Device{}}
	r.v = &verifier.Verifier{
		Enrollments: enr,
		Expected: verifier.ExpectedFunc(func(ctx context.Context, node string) (attest.Measurements, error) {
			r.mu.Lock()
			defer r.mu.Unlock()
			m, ok := r.expected[node]
			if !ok {
				return m, verifier.ErrUnknownNode
			}
			return m, nil
		}),
		Secrets: verifier.SecretsFunc(func(ctx context.Context, node string) (verifier.NodeSecrets, error) {
			ns := verifier.NodeSecrets{JoinToken: "join-" + node, DiskKey: []byte("disk-key-of-" + node)}
			if node == "pi-01" { // pi-01 is in a cluster, pi-02 in none
				ns.KubernetesJoin = []byte(`{"token":"for-` + node + `"}`)
			}
			return ns, nil
		}),
		Events: r.ev,
		Now: func() time.Time {
			r.mu.Lock()
			defer r.mu.Unlock()
			return r.now
		},
	}
	for _, node := range []string{"pi-01", "pi-02"} {
		d, err := hatsim.Open(filepath.Join(dir, node+".json"), hatsim.Options{Serial: node})
		if err != nil {
			t.Fatal(err)
		}
		c, err := hatlink.NewClient(t.Context(), hatlink.Direct(d))
		if err != nil {
			t.Fatal(err)
		}
		r.devs[node], r.hats[node] = d, c
		if _, err := r.v.Enroll(t.Context(), node, hatlink.EncodeKey(d.Identity().SignKey)); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// boot measures m into the node's HAT after a power cycle.
func (r *rig) boot(t *testing.T, node string, m attest.Measurements) {
	t.Helper()
	c := r.hats[node]
	if _, err := c.PowerCycle(t.Context()); err != nil {
		t.Fatal(err)
	}
	d, err := m.Digests()
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range d {
		if _, err := c.Extend(t.Context(), byte(i), x); err != nil {
			t.Fatal(err)
		}
	}
}

// quote has hat (a node name) quote a fresh nonce issued to node.
func (r *rig) quote(t *testing.T, node, hat string) attest.QuoteSubmission {
	t.Helper()
	ch, err := r.v.Challenge(t.Context(), node)
	if err != nil {
		t.Fatal(err)
	}
	return r.quoteNonce(t, node, hat, [32]byte(ch.Nonce))
}

func (r *rig) quoteNonce(t *testing.T, node, hat string, nonce [32]byte) attest.QuoteSubmission {
	t.Helper()
	q, err := r.hats[hat].Quote(t.Context(), nonce, hatlink.BootMask)
	if err != nil {
		t.Fatal(err)
	}
	return attest.QuoteSubmission{Node: node, Key: hatlink.EncodeKey(r.devs[hat].Identity().SignKey), Statement: q.Statement, Signature: q.Signature[:]}
}

// open has the node's HAT open every released secret.
func (r *rig) open(t *testing.T, node string, rel attest.Release) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range rel.Secrets {
		b, err := r.hats[node].Unwrap(t.Context(), s.Envelope)
		if err != nil {
			return nil, err
		}
		out[s.Name] = string(b)
	}
	return out, nil
}

func TestGoodNodeGetsSecrets(t *testing.T) {
	r := newRig(t)
	r.boot(t, "pi-01", imageA)
	rel, err := r.v.Verify(t.Context(), r.quote(t, "pi-01", "pi-01"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.open(t, "pi-01", rel)
	if err != nil {
		t.Fatal(err)
	}
	if got[attest.SecretJoinToken] != "join-pi-01" || got[attest.SecretDiskKey] != "disk-key-of-pi-01" ||
		got[attest.SecretKubernetesJoin] != `{"token":"for-pi-01"}` || len(got) != 3 {
		t.Errorf("opened secrets = %q", got)
	}
	if ev := r.ev.last(); ev.Type != "attest.ok" || ev.Node != "pi-01" {
		t.Errorf("event = %+v, want attest.ok for pi-01", ev)
	}
	r.boot(t, "pi-02", imageA)
	rel2, err := r.v.Verify(t.Context(), r.quote(t, "pi-02", "pi-02"))
	if err != nil {
		t.Fatal(err)
	}
	if got2, err := r.open(t, "pi-02", rel2); err != nil || len(got2) != 2 || got2[attest.SecretKubernetesJoin] != "" {
		t.Errorf("a node in no cluster opened %q, %v; want the join token and disk key only", got2, err)
	}
	// The envelopes are useless to another HAT, and to this one once it reboots into something else.
	if _, err := r.open(t, "pi-02", rel); !errors.Is(err, hatlink.ErrPolicyMismatch) && !errors.Is(err, hatlink.ErrDecrypt) {
		t.Errorf("another HAT opened pi-01's secrets: err = %v", err)
	}
	r.boot(t, "pi-01", imageB)
	if _, err := r.open(t, "pi-01", rel); !errors.Is(err, hatlink.ErrPolicyMismatch) {
		t.Errorf("pi-01 opened its secrets after booting another image: err = %v", err)
	}
}

// refused asserts err is a refusal wrapping want and returns its reason.
func refused(t *testing.T, err, want error) string {
	t.Helper()
	var ref *verifier.Refusal
	if !errors.As(err, &ref) || !errors.Is(err, want) {
		t.Fatalf("err = %v, want a refusal for %v", err, want)
	}
	return ref.Reason
}

func TestRefusals(t *testing.T) {
	tests := map[string]struct {
		run  func(t *testing.T, r *rig) error
		want error
		// reason must contain this
		reason string
	}{
		"replayed quote": {func(t *testing.T, r *rig) error {
			q := r.quote(t, "pi-01", "pi-01")
			if _, err := r.v.Verify(t.Context(), q); err != nil {
				t.Fatal(err)
			}
			_, err := r.v.Verify(t.Context(), q)
			return err
		}, verifier.ErrNonceUnknown, "already used"},
		"reused nonce in a new quote": {func(t *testing.T, r *rig) error {
			ch, _ := r.v.Challenge(t.Context(), "pi-01")
			if _, err := r.v.Verify(t.Context(), r.quoteNonce(t, "pi-01", "pi-01", [32]byte(ch.Nonce))); err != nil {
				t.Fatal(err)
			}
			_, err := r.v.Verify(t.Context(), r.quoteNonce(t, "pi-01", "pi-01", [32]byte(ch.Nonce)))
			return err
		}, verifier.ErrNonceUnknown, "fresh challenge"},
		"stale nonce": {func(t *testing.T, r *rig) error {
			q := r.quote(t, "pi-01", "pi-01")
			r.advance(verifier.DefaultNonceTTL + time.Second)
			_, err := r.v.Verify(t.Context(), q)
			return err
		}, verifier.ErrNonceExpired, "expired"},
		"nonce never issued": {func(t *testing.T, r *rig) error {
			var n [32]byte
			rand.Read(n[:])
			_, err := r.v.Verify(t.Context(), r.quoteNonce(t, "pi-01", "pi-01", n))
			return err
		}, verifier.ErrNonceUnknown, "unknown"},
		"nonce issued to another node": {func(t *testing.T, r *rig) error {
			ch, _ := r.v.Challenge(t.Context(), "pi-02")
			_, err := r.v.Verify(t.Context(), r.quoteNonce(t, "pi-01", "pi-01", [32]byte(ch.Nonce)))
			return err
		}, verifier.ErrNonceNode, "another node"},
		"unenrolled key": {func(t *testing.T, r *rig) error {
			if err := r.v.Revoke(t.Context(), "pi-01"); err != nil {
				t.Fatal(err)
			}
			_, err := r.v.Verify(t.Context(), r.quote(t, "pi-01", "pi-01"))
			return err
		}, verifier.ErrNotEnrolled, "no enrolled HAT key"},
		"register value from another image": {func(t *testing.T, r *rig) error {
			r.boot(t, "pi-01", imageB)
			_, err := r.v.Verify(t.Context(), r.quote(t, "pi-01", "pi-01"))
			return err
		}, verifier.ErrMeasurement, "mismatch: kernel, root filesystem (verity root hash)"},
		"quote signed by another node's key": {func(t *testing.T, r *rig) error {
			r.boot(t, "pi-02", imageA)
			_, err := r.v.Verify(t.Context(), r.quote(t, "pi-01", "pi-02"))
			return err
		}, verifier.ErrWrongKey, "enrolled with"},
		"another node's signature claiming this node's key": {func(t *testing.T, r *rig) error {
			r.boot(t, "pi-02", imageA)
			q := r.quote(t, "pi-01", "pi-02")
			q.Key = hatlink.EncodeKey(r.devs["pi-01"].Identity().SignKey)
			_, err := r.v.Verify(t.Context(), q)
			return err
		}, verifier.ErrWrongKey, "does not verify"},
		"image changed in the config, node not rebooted": {func(t *testing.T, r *rig) error {
			if _, err := r.v.Verify(t.Context(), r.quote(t, "pi-01", "pi-01")); err != nil {
				t.Fatal(err)
			}
			r.mu.Lock()
			r.expected["pi-01"] = imageB
			r.mu.Unlock()
			_, err := r.v.Verify(t.Context(), r.quote(t, "pi-01", "pi-01"))
			return err
		}, verifier.ErrMeasurement, "reboot it into the assigned image"},
		"node not in the config": {func(t *testing.T, r *rig) error {
			q := r.quote(t, "pi-01", "pi-01")
			r.mu.Lock()
			delete(r.expected, "pi-01")
			r.mu.Unlock()
			_, err := r.v.Verify(t.Context(), q)
			return err
		}, verifier.ErrUnknownNode, "not in the rack config"},
		"garbage statement": {func(t *testing.T, r *rig) error {
			q := r.quote(t, "pi-01", "pi-01")
			q.Statement = q.Statement[:40]
			_, err := r.v.Verify(t.Context(), q)
			return err
		}, verifier.ErrMalformed, "malformed"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := newRig(t)
			r.boot(t, "pi-01", imageA)
			reason := refused(t, tc.run(t, r), tc.want)
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q does not say %q", reason, tc.reason)
			}
			if errors.Is(tc.want, verifier.ErrUnknownNode) {
				if ev := r.ev.last(); ev.Type != "" {
					t.Errorf("a quote for a node missing from the config left an event: %+v", ev)
				}
			} else if ev := r.ev.last(); ev.Type != "attest.refused" || ev.Detail != reason {
				t.Errorf("last event = %+v, want attest.refused with the reason", ev)
			}
			t.Logf("reason: %s", reason)
		})
	}
}
