package verifier

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/racklet/racklet-boot/attest"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/internal/ratelimit"
	"github.com/racklet/racklet-boot/store"
)

// Defaults for Verifier.
const (
	DefaultNonceTTL  = 60 * time.Second
	DefaultMaxNonces = 4096
	// DefaultMaxNoncesPerNode bounds the unused nonces of one node; of
	// those, one client address holds at most noncesPerClient.
	DefaultMaxNoncesPerNode = 8
)

// Enrolment says how a HAT key becomes trusted for a node of the config
// that has none: the rack config's enrolment setting.
type Enrolment string

// Enrolment modes.
const (
	// Preprovisioned (the default): only keys from the config (hatKey, or
	// an approval written to the approved-nodes file) or enrolled by an
	// operator are trusted; a quote with any other key is refused and
	// nothing is recorded.
	Preprovisioned Enrolment = "preprovisioned"
	// Approve: a node's unknown key is handed to Claims for an operator to
	// approve (racklet-boot nodes approve), and refused until then.
	Approve Enrolment = "approve"
	// TOFU (trust on first use): the first key a node of the config
	// without one quotes with is enrolled at once; a later, different key
	// is a conflict handed to Claims, never a replacement.
	TOFU Enrolment = "tofu"
)

// Claims is where keys asking to be trusted wait for an operator (the
// pending list racklet-boot shows in `nodes pending`).
type Claims interface {
	// Claimed lists the keys waiting to become node's.
	Claimed(ctx context.Context, node string) ([]string, error)
	// Claim records that key (with the HAT's serial) asks to be node's;
	// a second key for one node is a conflict the operator resolves.
	Claim(ctx context.Context, node, key, serial string) error
}

// Refusal reasons; a *Refusal wraps one of them.
var (
	ErrMalformed   = errors.New("malformed quote")
	ErrNotEnrolled = errors.New("node has no enrolled HAT key")
	ErrPending     = errors.New("HAT key awaits operator approval")
	ErrUnknown     = errors.New("no such node in the rack config")
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
	// Outcome, if set, is called once per quote with "ok", the refusal's
	// Code, or "error" for the server's own failures (for metrics).
	Outcome func(outcome string)
	// Claims receives keys that wait for an operator (Approve, and TOFU's
	// conflicts); nil refuses them without recording anything.
	Claims Claims
	// Known says whether the rack config has node; a challenge for any
	// other name is refused, so no state is kept for it. nil asks Expected.
	Known func(ctx context.Context, node string) bool
	// NodeAddr, when set, says where a node is (its DHCP lease): nonces
	// issued to that address are never evicted by other clients asking in
	// the node's name.
	NodeAddr         func(ctx context.Context, node string) (netip.Addr, bool)
	NonceTTL         time.Duration // default DefaultNonceTTL
	MaxNonces        int           // default DefaultMaxNonces, in all
	MaxNoncesPerNode int           // default DefaultMaxNoncesPerNode
	Logger           *slog.Logger  // nil discards
	Now              func() time.Time
	Rand             io.Reader // default crypto/rand
	// PerMinute bounds the challenges, and the quotes, from one client
	// address in a minute on NodeRoutes; 0 is DefaultRequestsPerMinute.
	PerMinute int

	mu     sync.Mutex
	nonces nonceTable

	enrolment atomic.Value // Enrolment; set with SetEnrolment

	limits             sync.Once
	challenges, quotes *ratelimit.Window
}

// SetEnrolment sets how a config node without a trusted key gets one
// (the rack config's enrolment; safe while quotes are verified). Until it
// is called, and for "", the mode is Preprovisioned.
func (v *Verifier) SetEnrolment(m Enrolment) { v.enrolment.Store(m) }

func (v *Verifier) enrolmentMode() Enrolment {
	m, _ := v.enrolment.Load().(Enrolment)
	return cmp.Or(m, Preprovisioned)
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

// Challenge issues a single-use nonce for node (ChallengeFrom with no
// client address).
func (v *Verifier) Challenge(ctx context.Context, node string) (attest.Challenge, error) {
	return v.ChallengeFrom(ctx, node, netip.Addr{})
}

// ChallengeFrom issues a single-use nonce for node to the client at from.
// Only nodes of the config get one. Each node holds at most
// MaxNoncesPerNode unused nonces and each client address a few of those:
// past either bound the oldest of that client's (or of the client holding
// the most) is dropped, so no node evicts another's nonces and no client a
// node's own.
func (v *Verifier) ChallengeFrom(ctx context.Context, node string, from netip.Addr) (attest.Challenge, error) {
	if node == "" {
		return attest.Challenge{}, errors.New("challenge: node name is empty")
	}
	if !v.known(ctx, node) {
		return attest.Challenge{}, fmt.Errorf("challenge: node %q: %w", node, ErrUnknown)
	}
	var n [32]byte
	if _, err := io.ReadFull(v.rand(), n[:]); err != nil {
		return attest.Challenge{}, fmt.Errorf("challenge: %w", err)
	}
	ttl := cmp.Or(v.NonceTTL, DefaultNonceTTL)
	now := v.now()
	var home netip.Addr
	if v.NodeAddr != nil {
		home, _ = v.NodeAddr(ctx, node)
	}
	v.mu.Lock()
	err := v.nonces.add(n, node, from, home, now.Add(ttl), now, cmp.Or(v.MaxNonces, DefaultMaxNonces), cmp.Or(v.MaxNoncesPerNode, DefaultMaxNoncesPerNode))
	v.mu.Unlock()
	if err != nil {
		return attest.Challenge{}, fmt.Errorf("challenge: %w", err)
	}
	return attest.Challenge{Nonce: n[:], Expires: now.Add(ttl)}, nil
}

// known asks Known, else Expected, whether the config has node.
func (v *Verifier) known(ctx context.Context, node string) bool {
	if v.Known != nil {
		return v.Known(ctx, node)
	}
	_, err := v.Expected.Expected(ctx, node)
	return !errors.Is(err, ErrUnknownNode)
}

// Verify checks a quote and, if it proves the node booted its assigned
// image, returns its secrets encrypted to its HAT. A refusal is a *Refusal;
// other errors are the server's own failures. Either way nothing is released.
func (v *Verifier) Verify(ctx context.Context, q attest.QuoteSubmission) (attest.Release, error) {
	rel, err := v.verify(ctx, q)
	if v.Outcome != nil {
		v.Outcome(outcomeOf(err))
	}
	ev := store.Event{Time: v.now(), Node: q.Node, Type: "attest.ok"}
	if err != nil {
		ev.Type, ev.Detail = "attest.refused", err.Error()
		v.logger().Warn("attestation refused", "node", q.Node, "reason", err.Error())
	} else {
		ev.Detail = fmt.Sprintf("secrets released (boot %d, image %s)", rel.BootCounter, rel.Image)
		v.logger().Info("attestation accepted", "node", q.Node, "bootCounter", rel.BootCounter)
	}
	// Events only for nodes of the config: a quote naming anything else
	// leaves nothing behind.
	var ref *Refusal
	if v.Events != nil && q.Node != "" && (!errors.As(err, &ref) || !errors.Is(ref.Err, ErrUnknownNode)) {
		if eerr := v.Events.AddEvent(ctx, ev); eerr != nil {
			v.logger().Error("record attestation event", "node", q.Node, "err", eerr)
		}
	}
	return rel, err
}

// outcomeOf names a Verify result: "ok", a refusal's code, or "error".
func outcomeOf(err error) string {
	var r *Refusal
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &r) && r.Code != "":
		return r.Code
	}
	return "error"
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

// enrolledKey finds the key the quote must verify against. A node without
// one gets it as Enrolment says: refused (preprovisioned), its key handed
// to Claims (approve, and a second key under tofu), or enrolled at once
// (tofu's first key).
func (v *Verifier) enrolledKey(ctx context.Context, q attest.QuoteSubmission, st hatlink.Statement) (ed25519.PublicKey, error) {
	e, ok, err := v.Enrollments.Enrollment(ctx, q.Node)
	if err != nil {
		return nil, fmt.Errorf("enrollment of node %s: %w", q.Node, err)
	}
	if ok && e.State == attest.Approved {
		if q.Key != "" && q.Key != e.Key {
			return nil, refuse("wrong-key", ErrWrongKey,
				"quote comes from HAT key %s, but node %s is enrolled with %s", q.Key, q.Node, e.Key)
		}
		pub, err := hatlink.ParseKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("enrollment of node %s: %w", q.Node, err)
		}
		return pub, nil
	}
	// No trusted key (an entry left pending by an older racklet-boot is
	// not trusted either).
	mode := v.enrolmentMode()
	if mode == Preprovisioned || q.Key == "" {
		return nil, refuse("not-enrolled", ErrNotEnrolled,
			"node %s has no enrolled HAT key: add its hatKey to the rack config (enrolment: preprovisioned)", q.Node)
	}
	pub, err := hatlink.ParseKey(q.Key)
	if err != nil {
		return nil, refuse("malformed", ErrMalformed, "node %s: %v", q.Node, err)
	}
	// The key must have made this quote: nobody claims a key they do not hold.
	if !ed25519.Verify(pub, q.Statement, q.Signature) {
		return nil, refuse("wrong-key", ErrWrongKey, "quote from node %s is not signed by the HAT key %s it names", q.Node, q.Key)
	}
	var claimed []string
	if v.Claims != nil {
		if claimed, err = v.Claims.Claimed(ctx, q.Node); err != nil {
			return nil, fmt.Errorf("pending keys of node %s: %w", q.Node, err)
		}
	}
	if mode == TOFU && len(claimed) == 0 {
		if _, err := v.Enroll(ctx, q.Node, q.Key); err != nil {
			return nil, fmt.Errorf("enroll the first HAT key of node %s: %w", q.Node, err)
		}
		v.logger().Warn("HAT key trusted on first use", "node", q.Node, "key", q.Key, "serial", st.Serial)
		v.event(ctx, q.Node, "enrol.tofu", fmt.Sprintf("HAT key %s (serial %s) trusted on first use", q.Key, st.Serial))
		return pub, nil
	}
	if v.Claims == nil {
		return nil, refuse("not-enrolled", ErrNotEnrolled, "node %s has no enrolled HAT key and racklet-boot keeps no pending list", q.Node)
	}
	if !slices.Contains(claimed, q.Key) {
		if err := v.Claims.Claim(ctx, q.Node, q.Key, st.Serial); err != nil {
			return nil, fmt.Errorf("record the pending HAT key of node %s: %w", q.Node, err)
		}
		if len(claimed) > 0 {
			v.logger().Warn("a second HAT key claims a node: conflict for the operator", "node", q.Node, "key", q.Key, "serial", st.Serial)
			v.event(ctx, q.Node, "enrol.conflict", fmt.Sprintf("HAT key %s (serial %s) claims this node too; %d other key(s) pending: approve one by its fingerprint", q.Key, st.Serial, len(claimed)))
		} else {
			v.logger().Info("new HAT key pending approval", "node", q.Node, "key", q.Key, "serial", st.Serial)
			v.event(ctx, q.Node, "enrol.pending", fmt.Sprintf("HAT key %s (serial %s) awaits approval", q.Key, st.Serial))
		}
	}
	return nil, refuse("pending", ErrPending, "HAT key %s of node %s awaits operator approval (racklet-boot nodes pending)", q.Key, q.Node)
}

func (v *Verifier) event(ctx context.Context, node, typ, detail string) {
	if v.Events == nil {
		return
	}
	if err := v.Events.AddEvent(ctx, store.Event{Time: v.now(), Node: node, Type: typ, Detail: detail}); err != nil {
		v.logger().Error("record an enrolment event", "node", node, "err", err)
	}
}
