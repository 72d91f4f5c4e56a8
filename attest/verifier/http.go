package verifier

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/internal/ratelimit"
)

// maxBody bounds request bodies.
const maxBody = 64 << 10

// DefaultRequestsPerMinute bounds the challenges, and separately the
// quotes, one client address may ask for in a minute (Verifier.PerMinute).
const DefaultRequestsPerMinute = 60

// Paths of the attestation API, as ServeMux patterns.
const (
	ChallengePattern   = "POST " + attest.PathPrefix + "challenge"
	QuotePattern       = "POST " + attest.PathPrefix + "quote"
	EnrollmentsPattern = attest.PathPrefix + "enrollments"
)

// NodeRoutes are the attestation API's node-facing handlers by ServeMux
// pattern, open to the LAN and bounded: bodies of at most 64 KiB, a
// number of requests per client address a minute, challenges only for
// nodes of the config, nonces capped per node and client.
//
//	POST challenge    {"node"}                 → attest.Challenge
//	POST quote        attest.QuoteSubmission   → attest.Release, or 403 attest.ErrorBody with the reason
func (v *Verifier) NodeRoutes() map[string]http.Handler {
	v.limits.Do(func() {
		per := cmp.Or(v.PerMinute, DefaultRequestsPerMinute)
		v.challenges, v.quotes = ratelimit.New(per, time.Minute), ratelimit.New(per, time.Minute)
	})
	return map[string]http.Handler{
		ChallengePattern: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !v.challenges.Allow(ratelimit.ClientAddr(r), v.now()) {
				writeJSON(w, http.StatusTooManyRequests, attest.ErrorBody{Error: "too many challenges from this address: try again in a minute"})
				return
			}
			var req attest.ChallengeRequest
			if !decode(w, r, &req) {
				return
			}
			c, err := v.ChallengeFrom(r.Context(), req.Node, ratelimit.ClientAddr(r))
			switch {
			case errors.Is(err, ErrUnknown):
				writeJSON(w, http.StatusNotFound, attest.ErrorBody{Error: err.Error()})
			case errors.Is(err, ErrNonceFull):
				writeJSON(w, http.StatusServiceUnavailable, attest.ErrorBody{Error: err.Error()})
			case err != nil:
				writeJSON(w, http.StatusBadRequest, attest.ErrorBody{Error: err.Error()})
			default:
				writeJSON(w, http.StatusOK, c)
			}
		}),
		QuotePattern: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !v.quotes.Allow(ratelimit.ClientAddr(r), v.now()) {
				writeJSON(w, http.StatusTooManyRequests, attest.ErrorBody{Error: "too many quotes from this address: try again in a minute"})
				return
			}
			var q attest.QuoteSubmission
			if !decode(w, r, &q) {
				return
			}
			rel, err := v.Verify(r.Context(), q)
			var ref *Refusal
			switch {
			case errors.As(err, &ref):
				writeJSON(w, http.StatusForbidden, attest.ErrorBody{Error: ref.Reason, Code: ref.Code})
			case err != nil:
				writeJSON(w, http.StatusInternalServerError, attest.ErrorBody{Error: err.Error(), Code: "internal"})
			default:
				writeJSON(w, http.StatusOK, rel)
			}
		}),
	}
}

// OperatorRoutes are the handlers that change or show who is trusted, by
// ServeMux pattern; serve them only behind the operator credential
// (racklet-boot wraps them in boot/adminauth):
//
//	GET  enrollments                           → []attest.Enrollment
//	POST enrollments  attest.EnrollmentAction  → attest.Enrollment (enroll) or 204 (revoke)
//
// A pending key is approved with racklet-boot nodes approve (the admin
// API's enrolments/approve), where every pending machine waits.
func (v *Verifier) OperatorRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + EnrollmentsPattern: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			list, err := v.Enrollments.ListEnrollments(r.Context())
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, attest.ErrorBody{Error: err.Error()})
				return
			}
			writeJSON(w, http.StatusOK, list)
		}),
		"POST " + EnrollmentsPattern: http.HandlerFunc(v.serveEnrollment),
	}
}

// Handler serves NodeRoutes and OperatorRoutes on one mux with no operator
// check: for tests and embedders that authenticate in front of it.
func (v *Verifier) Handler() http.Handler {
	mux := http.NewServeMux()
	for p, h := range v.NodeRoutes() {
		mux.Handle(p, h)
	}
	for p, h := range v.OperatorRoutes() {
		mux.Handle(p, h)
	}
	return mux
}

func (v *Verifier) serveEnrollment(w http.ResponseWriter, r *http.Request) {
	var a attest.EnrollmentAction
	if !decode(w, r, &a) {
		return
	}
	var (
		e   attest.Enrollment
		err error
	)
	switch a.Action {
	case "enroll":
		e, err = v.Enroll(r.Context(), a.Node, a.Key)
	case "revoke":
		if err = v.Revoke(r.Context(), a.Node); err == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	default:
		err = fmt.Errorf("%w: action %q, want enroll or revoke (approve pending keys with racklet-boot nodes approve)", errBadAction, a.Action)
	}
	switch {
	case errors.Is(err, errBadAction), errors.Is(err, ErrBadEnrollment):
		writeJSON(w, http.StatusBadRequest, attest.ErrorBody{Error: err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, attest.ErrorBody{Error: err.Error()})
	default:
		writeJSON(w, http.StatusOK, e)
	}
}

var errBadAction = errors.New("unknown enrollment action")

// ErrBadEnrollment is returned by Enroll for a request without a node
// name or with a malformed key.
var ErrBadEnrollment = errors.New("enrollment not possible")

// Enroll sets key (hatlink.EncodeKey form) as node's approved HAT key, as a
// pre-provisioned key from the rack config is.
func (v *Verifier) Enroll(ctx context.Context, node, key string) (attest.Enrollment, error) {
	if node == "" {
		return attest.Enrollment{}, fmt.Errorf("%w: node name is empty", ErrBadEnrollment)
	}
	if _, err := hatlink.ParseKey(key); err != nil {
		return attest.Enrollment{}, fmt.Errorf("%w: %v", ErrBadEnrollment, err)
	}
	if e, ok, err := v.Enrollments.Enrollment(ctx, node); err != nil {
		return attest.Enrollment{}, err
	} else if ok && e.Key == key && e.State == attest.Approved {
		return e, nil
	}
	now := v.now()
	e := attest.Enrollment{Node: node, Key: key, State: attest.Approved, Created: now, Approved: now}
	return e, v.Enrollments.PutEnrollment(ctx, e)
}

// Revoke forgets node's HAT key: its quotes are refused until it is enrolled again.
func (v *Verifier) Revoke(ctx context.Context, node string) error {
	return v.Enrollments.DeleteEnrollment(ctx, node)
}

func decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeJSON(w, http.StatusBadRequest, attest.ErrorBody{Error: "bad request body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
