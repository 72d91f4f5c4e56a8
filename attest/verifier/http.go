package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/racklet/racklet-boot/attest"

	"github.com/racklet/racklet-boot/hatlink"
)

// maxBody bounds request bodies.
const maxBody = 64 << 10

// Handler serves the attestation API under PathPrefix:
//
//	POST challenge    {"node"}                 → attest.Challenge
//	POST quote        attest.QuoteSubmission   → attest.Release, or 403 attest.ErrorBody with the reason
//	GET  enrollments                           → []attest.Enrollment (pending ones wait for approval)
//	POST enrollments  attest.EnrollmentAction  → attest.Enrollment (approve, enroll) or 204 (revoke)
//
// Mount it on a mux as mux.Handle(attest.PathPrefix, v.Handler()). The
// enrollment endpoints change who is trusted: serve them only where
// operators are (the lead's API authentication applies).
func (v *Verifier) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+attest.PathPrefix+"challenge", func(w http.ResponseWriter, r *http.Request) {
		var req attest.ChallengeRequest
		if !decode(w, r, &req) {
			return
		}
		c, err := v.Challenge(r.Context(), req.Node)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, attest.ErrorBody{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("POST "+attest.PathPrefix+"quote", func(w http.ResponseWriter, r *http.Request) {
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
	})
	mux.HandleFunc("GET "+attest.PathPrefix+"enrollments", func(w http.ResponseWriter, r *http.Request) {
		list, err := v.Enrollments.ListEnrollments(r.Context())
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, attest.ErrorBody{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
	mux.HandleFunc("POST "+attest.PathPrefix+"enrollments", func(w http.ResponseWriter, r *http.Request) {
		var a attest.EnrollmentAction
		if !decode(w, r, &a) {
			return
		}
		var (
			e   attest.Enrollment
			err error
		)
		switch a.Action {
		case "approve":
			e, err = v.Approve(r.Context(), a.Node, a.Key)
		case "enroll":
			e, err = v.Enroll(r.Context(), a.Node, a.Key)
		case "revoke":
			if err = v.Revoke(r.Context(), a.Node); err == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		default:
			err = fmt.Errorf("%w: action %q, want approve, enroll or revoke", errBadAction, a.Action)
		}
		switch {
		case errors.Is(err, errBadAction), errors.Is(err, ErrBadEnrollment):
			writeJSON(w, http.StatusBadRequest, attest.ErrorBody{Error: err.Error()})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, attest.ErrorBody{Error: err.Error()})
		default:
			writeJSON(w, http.StatusOK, e)
		}
	})
	return mux
}

var errBadAction = errors.New("unknown enrollment action")

// ErrBadEnrollment is returned by Approve and Enroll for requests that name
// no pending key, the wrong key, or a malformed one.
var ErrBadEnrollment = errors.New("enrollment not possible")

// Approve trusts node's pending HAT key. If key is not empty it must be the
// pending one (so an operator approves exactly the key they were shown).
func (v *Verifier) Approve(ctx context.Context, node, key string) (attest.Enrollment, error) {
	e, ok, err := v.Enrollments.Enrollment(ctx, node)
	if err != nil {
		return attest.Enrollment{}, err
	}
	if !ok {
		return attest.Enrollment{}, fmt.Errorf("%w: nothing pending for node %s", ErrBadEnrollment, node)
	}
	if key != "" && key != e.Key {
		return attest.Enrollment{}, fmt.Errorf("%w: node %s has key %s pending, not %s", ErrBadEnrollment, node, e.Key, key)
	}
	if e.State == attest.Approved {
		return e, nil
	}
	e.State, e.Approved = attest.Approved, v.now()
	if err := v.Enrollments.PutEnrollment(ctx, e); err != nil {
		return attest.Enrollment{}, err
	}
	v.logger().Info("HAT key approved", "node", node, "key", e.Key)
	return e, nil
}

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
