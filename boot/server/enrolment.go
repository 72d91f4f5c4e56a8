package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/enrol"
	"github.com/racklet/racklet-boot/rack"
)

// One enrolment story: every key waiting for an operator is in the enrol
// book (pending-nodes.json) — a machine the config does not name, found by
// its HAT on the BMC listener (unknownMachines: discover), or a key asking
// to be a config node's, from a quote (enrolment: approve, or a second key
// under tofu). `racklet-boot nodes approve` (POST enrolments/approve)
// approves either: a new machine goes to the approved-nodes overlay, a
// config node's key is enrolled for attestation. A node that has a key is
// never given another by an approval: revoke first.

// claimBook is the enrol book as the verifier's Claims.
type claimBook struct{ b *enrol.Book }

func (c claimBook) Claimed(_ context.Context, node string) ([]string, error) {
	return c.b.Claimed(node), nil
}

func (c claimBook) Claim(_ context.Context, node, key, serial string) error {
	return c.b.Claim(node, key, serial)
}

func (s *Server) serveApprove(w http.ResponseWriter, r *http.Request) {
	var req ApproveRequest
	if !decodeBody(w, r, &req) {
		return
	}
	// Refresh the pending entries with what DHCP saw (MAC, kind) first.
	for _, p := range s.pending(r) {
		if _, err := s.enrol.Seen(p); err != nil {
			adminError(w, http.StatusInternalServerError, err)
			return
		}
	}
	p, err := s.enrol.Find(req.Ref)
	switch {
	case errors.Is(err, enrol.ErrNotPending):
		adminError(w, http.StatusNotFound, err)
		return
	case err != nil:
		adminError(w, http.StatusConflict, err)
		return
	}
	node := p.Node
	if node != "" && req.As != "" && req.As != node {
		adminError(w, http.StatusBadRequest, fmt.Errorf("HAT key %s asks to be node %s, not %s", p.Fingerprint, node, req.As))
		return
	}
	if node == "" {
		node = req.As
	}
	if node == "" {
		adminError(w, http.StatusBadRequest, errors.New("name the node the machine becomes (--as NAME)"))
		return
	}
	by := actor(r, req.By)
	var res ApproveResult
	if n, ok := s.inv.Load().ByName(node); ok {
		res, err = s.enrolKey(r.Context(), *n, p, by)
	} else {
		res, err = s.approveMachine(r, p, req, by)
	}
	if err != nil {
		var ae *approveError
		if errors.As(err, &ae) {
			adminError(w, ae.status, ae.err)
		} else {
			adminError(w, http.StatusInternalServerError, err)
		}
		return
	}
	s.events.AddEvent(r.Context(), eventNow(res.Node, "enrol.approved", fmt.Sprintf("serial %s, HAT key %s, approved by %s", res.Serial, res.Fingerprint, by)))
	s.hub.pending()
	adminJSON(w, http.StatusOK, res)
}

type approveError struct {
	status int
	err    error
}

func (e *approveError) Error() string { return e.err.Error() }

// enrolKey trusts p's key for the config node n, which has none.
func (s *Server) enrolKey(ctx context.Context, n rack.Node, p enrol.Pending, by string) (ApproveResult, error) {
	if strings.TrimSpace(n.HATKey) != "" {
		src := n.Source
		if src == "" {
			src = "the rack config"
		}
		return ApproveResult{}, &approveError{http.StatusConflict, fmt.Errorf("node %s has hatKey %s in %s: edit it there", n.Name, enrol.Fingerprint(n.HATKey), src)}
	}
	if e, ok, err := s.verifier.Enrollments.Enrollment(ctx, n.Name); err != nil {
		return ApproveResult{}, err
	} else if ok && e.State == attest.Approved && e.Key != p.Key {
		return ApproveResult{}, &approveError{http.StatusConflict, fmt.Errorf("node %s is enrolled with HAT key %s: revoke it first (POST /api/v1/attest/enrollments {\"action\": \"revoke\"}); an approval never replaces a key", n.Name, enrol.Fingerprint(e.Key))}
	}
	if _, err := s.verifier.Enroll(ctx, n.Name, p.Key); err != nil {
		if errors.Is(err, verifier.ErrBadEnrollment) {
			return ApproveResult{}, &approveError{http.StatusBadRequest, err}
		}
		return ApproveResult{}, err
	}
	if err := s.enrol.ForgetNode(n.Name); err != nil {
		return ApproveResult{}, err
	}
	if err := s.enrol.Forget(p.Key); err != nil && !errors.Is(err, enrol.ErrNotPending) {
		return ApproveResult{}, err
	}
	s.log.Info("HAT key enrolled", "node", n.Name, "serial", p.Serial, "key", p.Key, "fingerprint", p.Fingerprint, "by", by)
	s.bmc.Rescan()
	return ApproveResult{Node: n.Name, Serial: p.Serial, Key: p.Key, Fingerprint: p.Fingerprint,
		File: filepath.Join(s.dataDir, AttestDir, verifier.EnrollmentFileName)}, nil
}

// approveMachine adds p, a machine the config does not name, to the
// approved-nodes overlay as req.As and applies it.
func (s *Server) approveMachine(r *http.Request, p enrol.Pending, req ApproveRequest, by string) (ApproveResult, error) {
	s.reloadMu.Lock()
	base := s.base
	s.reloadMu.Unlock()
	n, _, err := s.enrol.Approve(base, enrol.Approval{Ref: p.Key, As: req.As, Kind: req.Kind, By: by})
	switch {
	case errors.Is(err, enrol.ErrNotPending):
		return ApproveResult{}, &approveError{http.StatusNotFound, err}
	case err != nil:
		return ApproveResult{}, &approveError{http.StatusBadRequest, err}
	}
	s.log.Info("machine approved", "node", n.Name, "serial", n.Serial, "key", n.HATKey, "by", by)
	if err := s.Reload(r.Context(), base); err != nil {
		return ApproveResult{}, fmt.Errorf("approved, but applying it failed: %w", err)
	}
	return ApproveResult{Node: n.Name, Serial: n.Serial, Key: n.HATKey, Fingerprint: enrol.Fingerprint(n.HATKey), File: s.enrol.OverlayPath()}, nil
}
