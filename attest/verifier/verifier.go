package verifier

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/attest"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/store"
)

// Defaults for Verifier.
const (
	DefaultNonceTTL  = 60 * time.Second
	DefaultMaxNonces = 4096
)

// Refusal reasons; a *Refusal wraps one of them.
var (
	ErrMalformed   = errors.New("malformed quote")
	ErrNotEnrolled = errors.New("node has no enrolled HAT key")
	ErrPending     = errors.New("HAT key awaits operator approval")
	ErrWrongKey    = errors.New("quote is not from the HAT enrolled for this node")
	ErrMeasurement = errors.New("measurements differ from the node's assigned image")
)

// Refusal is why a quote released nothing. Reason is written for the
// operator and sent to the node; errors.Is matches the wrapped sentinel.
type Refusal struct {
	Code   string // short machine-readable code: "nonce", "not-enrolled", ...
	Reason string
	Err    error
}

// Error returns the reason.
func (r *Refusal) Error() string { return r.Reason }

// Unwrap returns the sentinel (ErrNonceExpired, ErrMeasurement, ...).
func (r *Refusal) Unwrap() error { return r.Err }

func refuse(code string, err error, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Reason: fmt.Sprintf(format, args...), Err: err}
}

// Verifier checks HAT quotes and releases node secrets. Set the exported
// fields before use; Enrollments, Expected and Secrets are required.
type Verifier struct {
	Enrollments Enrollments
	Expected    Expected
	Secrets     Secrets
	// Events, if set, gets an "attest.ok" or "attest.refused" event per quote.
	Events EventSink
	// TrustOnFirstUse records an unknown node's key as pending for an
	// operator to approve (it is refused until then). Off: unknown keys are refused.
	TrustOnFirstUse bool
	NonceTTL        time.Duration // default DefaultNonceTTL
	MaxNonces       int           // default DefaultMaxNonces
	Logger          *slog.Logger  // nil discards
	Now             func() time.Time
	Rand            io.Reader // default crypto/rand

	mu     sync.Mutex
	nonces nonceTable
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) rand() io.Reader {
	if v.Rand != nil {
		return v.Rand
	}
	return rand.Reader
}

func (v *Verifier) logger() *slog.Logger {
	if v.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return v.Logger
}

// Challenge issues a single-use nonce for node.
func (v *Verifier) Challenge(ctx context.Context, node string) (attest.Challenge, error) {
	if node == "" {
		return attest.Challenge{}, errors.New("challenge: node name is empty")
	}
	var n [32]byte
	if _, err := io.ReadFull(v.rand(), n[:]); err != nil {
		return attest.Challenge{}, fmt.Errorf("challenge: %w", err)
	}
	ttl, max := v.NonceTTL, v.MaxNonces
	if ttl <= 0 {
		ttl = DefaultNonceTTL
	}
	if max <= 0 {
		max = DefaultMaxNonces
	}
	now := v.now()
	v.mu.Lock()
	v.nonces.add(n, node, now.Add(ttl), now, max)
	v.mu.Unlock()
	return attest.Challenge{Nonce: n[:], Expires: now.Add(ttl)}, nil
}

// Verify checks a quote and, if it proves the node booted its assigned
// image, returns its secrets encrypted to its HAT. A refusal is a *Refusal;
// other errors are the server's own failures. Either way nothing is released.
func (v *Verifier) Verify(ctx context.Context, q attest.QuoteSubmission) (attest.Release, error) {
	rel, err := v.verify(ctx, q)
	ev := store.Event{Time: v.now(), Node: q.Node, Type: "attest.ok"}
	if err != nil {
		ev.Type, ev.Detail = "attest.refused", err.Error()
		v.logger().Warn("attestation refused", "node", q.Node, "reason", err.Error())
	} else {
		ev.Detail = fmt.Sprintf("secrets released (boot %d, image %s)", rel.BootCounter, rel.Image)
		v.logger().Info("attestation accepted", "node", q.Node, "bootCounter", rel.BootCounter)
	}
	if v.Events != nil && q.Node != "" {
		if eerr := v.Events.AddEvent(ctx, ev); eerr != nil {
			v.logger().Error("record attestation event", "node", q.Node, "err", eerr)
		}
	}
	return rel, err
}

func (v *Verifier) verify(ctx context.Context, q attest.QuoteSubmission) (attest.Release, error) {
	if q.Node == "" {
		return attest.Release{}, refuse("malformed", ErrMalformed, "quote names no node")
	}
	st, err := hatlink.ParseStatement(q.Statement)
	if err != nil {
		return attest.Release{}, refuse("malformed", ErrMalformed, "quote from node %s: %v", q.Node, err)
	}
	// The node must be in the config before anything else, so unknown
	// names never create pending enrollments.
	want, err := v.Expected.Expected(ctx, q.Node)
	if errors.Is(err, ErrUnknownNode) {
		return attest.Release{}, refuse("unknown-node", err, "node %s is not in the rack config", q.Node)
	}
	if err != nil {
		return attest.Release{}, fmt.Errorf("expected measurements for node %s: %w", q.Node, err)
	}
	pub, err := v.enrolledKey(ctx, q, st)
	if err != nil {
		return attest.Release{}, err
	}
	if !ed25519.Verify(pub, q.Statement, q.Signature) {
		return attest.Release{}, refuse("wrong-key", ErrWrongKey,
			"quote signature from node %s does not verify against its enrolled HAT key: signed by another HAT, or altered", q.Node)
	}
	v.mu.Lock()
	err = v.nonces.take(st.Nonce, q.Node, v.now())
	v.mu.Unlock()
	if err != nil {
		return attest.Release{}, refuse("nonce", err, "quote from node %s refused: %v", q.Node, err)
	}
	regs, err := want.Registers()
	if err != nil {
		return attest.Release{}, fmt.Errorf("expected measurements for node %s: %w", q.Node, err)
	}
	if bad := mismatched(regs, st.Registers); len(bad) > 0 {
		img := ""
		if want.Image != "" {
			img = " (" + want.Image + ")"
		}
		return attest.Release{}, refuse("measurement", ErrMeasurement,
			"node %s booted something other than its assigned image%s (mismatch: %s); reboot it into the assigned image, or assign the image it runs",
			q.Node, img, strings.Join(bad, ", "))
	}
	ns, err := v.Secrets.Secrets(ctx, q.Node)
	if err != nil {
		return attest.Release{}, fmt.Errorf("secrets for node %s: %w", q.Node, err)
	}
	rel := attest.Release{Node: q.Node, BootCounter: st.BootCounter, Image: want.Image}
	for _, s := range []struct {
		name string
		data []byte
	}{{attest.SecretJoinToken, []byte(ns.JoinToken)}, {attest.SecretDiskKey, ns.DiskKey}, {attest.SecretKubernetesJoin, ns.KubernetesJoin}} {
		if len(s.data) == 0 {
			continue
		}
		env, err := hatlink.Wrap(v.rand(), st.BoxKey, regs, s.data)
		if err != nil {
			return attest.Release{}, fmt.Errorf("encrypt %s for node %s: %w", s.name, q.Node, err)
		}
		rel.Secrets = append(rel.Secrets, attest.WrappedSecret{Name: s.name, Envelope: env})
	}
	return rel, nil
}

// mismatched names the boot registers whose values differ or are missing.
func mismatched(want, got hatlink.Registers) []string {
	var bad []string
	for i := range attest.RegisterNames {
		if got.Mask&(1<<i) == 0 {
			bad = append(bad, attest.RegisterNames[i]+" (not quoted)")
		} else if got.Values[i] != want.Values[i] {
			bad = append(bad, attest.RegisterNames[i])
		}
	}
	return bad
}

// enrolledKey finds the key the quote must verify against, recording a
// pending enrollment on first use when that is allowed.
func (v *Verifier) enrolledKey(ctx context.Context, q attest.QuoteSubmission, st hatlink.Statement) (ed25519.PublicKey, error) {
	e, ok, err := v.Enrollments.Enrollment(ctx, q.Node)
	if err != nil {
		return nil, fmt.Errorf("enrollment of node %s: %w", q.Node, err)
	}
	if !ok {
		if !v.TrustOnFirstUse || q.Key == "" {
			return nil, refuse("not-enrolled", ErrNotEnrolled,
				"node %s has no enrolled HAT key: add it to the rack config or enroll it", q.Node)
		}
		if _, err := hatlink.ParseKey(q.Key); err != nil {
			return nil, refuse("malformed", ErrMalformed, "node %s: %v", q.Node, err)
		}
		e = attest.Enrollment{Node: q.Node, Key: q.Key, State: attest.Pending, Serial: st.Serial, Created: v.now()}
		if err := v.Enrollments.PutEnrollment(ctx, e); err != nil {
			return nil, fmt.Errorf("record pending enrollment of node %s: %w", q.Node, err)
		}
		v.logger().Info("new HAT key pending approval", "node", q.Node, "key", q.Key, "serial", st.Serial)
		return nil, refuse("pending", ErrPending, "HAT key %s of node %s is new and awaits operator approval", q.Key, q.Node)
	}
	if q.Key != "" && q.Key != e.Key {
		return nil, refuse("wrong-key", ErrWrongKey,
			"quote comes from HAT key %s, but node %s is enrolled with %s", q.Key, q.Node, e.Key)
	}
	if e.State != attest.Approved {
		return nil, refuse("pending", ErrPending, "HAT key %s of node %s awaits operator approval", e.Key, q.Node)
	}
	pub, err := hatlink.ParseKey(e.Key)
	if err != nil {
		return nil, fmt.Errorf("enrollment of node %s: %w", q.Node, err)
	}
	return pub, nil
}
