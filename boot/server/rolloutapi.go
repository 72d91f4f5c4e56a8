package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/racklet/racklet-boot/ab/rollout"
)

// RolloutRequest is the body of POST /api/v1/admin/rollouts/{group}/{action}
// (pause, resume, undo).
type RolloutRequest struct {
	By string `json:"by,omitempty"`
}

// rolloutTopic is the hub message that makes dashboards fetch the rollouts
// again (node names cannot start with "@").
const rolloutTopic = "@rollouts"

// Rollouts returns every group's rollout with its members (what `racklet-boot
// rollout status` prints).
func (s *Server) Rollouts() []rollout.GroupStatus { return s.ab.c.Status() }

// RolloutAction pauses, resumes or undoes a group's rollout, as an operator
// asked (by names who, for the log).
func (s *Server) RolloutAction(ctx context.Context, group, action, by string) (rollout.GroupStatus, error) {
	var err error
	switch action {
	case "pause":
		err = s.ab.c.Pause(ctx, group)
	case "resume":
		err = s.ab.c.Resume(ctx, group)
	case "undo":
		err = s.ab.c.Undo(ctx, group)
	default:
		return rollout.GroupStatus{}, fmt.Errorf("%w %q: pause, resume or undo", errBadRolloutAction, action)
	}
	if err != nil {
		return rollout.GroupStatus{}, err
	}
	s.log.Info("rollout "+action, "group", group, "by", by)
	s.ab.nudge()
	s.hub.publish(rolloutTopic)
	for _, g := range s.Rollouts() {
		if g.Group == group {
			return g, nil
		}
	}
	return rollout.GroupStatus{}, fmt.Errorf("%w: %s", rollout.ErrUnknownGroup, group)
}

var errBadRolloutAction = errors.New("unknown rollout action")

func (s *Server) serveRollouts(w http.ResponseWriter, r *http.Request) {
	st := s.Rollouts()
	if st == nil {
		st = []rollout.GroupStatus{}
	}
	adminJSON(w, http.StatusOK, st)
}

func (s *Server) serveRolloutAction(w http.ResponseWriter, r *http.Request) {
	var req RolloutRequest
	if !decodeBody(w, r, &req) {
		return
	}
	g, err := s.RolloutAction(r.Context(), r.PathValue("group"), r.PathValue("action"), actor(r, req.By))
	switch {
	case errors.Is(err, rollout.ErrUnknownGroup):
		adminError(w, http.StatusNotFound, err)
	case errors.Is(err, errBadRolloutAction):
		adminError(w, http.StatusBadRequest, err)
	case err != nil:
		adminError(w, http.StatusConflict, err)
	default:
		adminJSON(w, http.StatusOK, g)
	}
}

// Rollouts asks for every group's rollout.
func (c *AdminClient) Rollouts(ctx context.Context) ([]rollout.GroupStatus, error) {
	var st []rollout.GroupStatus
	return st, c.JSON(ctx, http.MethodGet, AdminPrefix+"rollouts", nil, &st)
}

// Rollout pauses, resumes or undoes a group's rollout.
func (c *AdminClient) Rollout(ctx context.Context, group, action, by string) (rollout.GroupStatus, error) {
	var g rollout.GroupStatus
	err := c.JSON(ctx, http.MethodPost, AdminPrefix+"rollouts/"+url.PathEscape(group)+"/"+url.PathEscape(action), RolloutRequest{By: by}, &g)
	return g, err
}
