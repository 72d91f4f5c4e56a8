package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/bmc/consolelog"
	"github.com/racklet/racklet-boot/dashboard"
	"github.com/racklet/racklet-boot/enrol"
)

// AdminPrefix is where the operators' API lives; every route under it (and
// the dashboard under dashboard.Prefix, the node inventory under
// /api/v1/nodes and the attestation enrolments) goes through the operator
// check (routes.go).
const AdminPrefix = "/api/v1/admin/"

// adminRoutes are the operator API's handlers by ServeMux pattern: the one
// place admin endpoints are registered. routes wraps each in the operator
// check.
func (s *Server) adminRoutes() map[string]http.Handler {
	return map[string]http.Handler{
		"GET " + AdminPrefix + "rack":                       http.HandlerFunc(s.serveRack),
		"GET " + AdminPrefix + "stream":                     http.HandlerFunc(s.serveStream),
		"GET " + AdminPrefix + "nodes/{node}":               http.HandlerFunc(s.serveNodeCard),
		"POST " + AdminPrefix + "nodes/{node}/power":        http.HandlerFunc(s.servePower),
		"GET " + AdminPrefix + "nodes/{node}/timeline":      http.HandlerFunc(s.serveTimeline),
		"GET " + AdminPrefix + "nodes/{node}/console":       http.HandlerFunc(s.serveConsole),
		"GET " + AdminPrefix + "nodes/{node}/console/boots": http.HandlerFunc(s.serveConsoleBoots),
		"GET " + AdminPrefix + "enrolments":                 http.HandlerFunc(s.servePending),
		"POST " + AdminPrefix + "enrolments/approve":        http.HandlerFunc(s.serveApprove),
		"POST " + AdminPrefix + "enrolments/forget":         http.HandlerFunc(s.serveForget),
		"GET " + AdminPrefix + "rollouts":                   http.HandlerFunc(s.serveRollouts),
		"POST " + AdminPrefix + "rollouts/{group}/{action}": http.HandlerFunc(s.serveRolloutAction),
		dashboard.Prefix: dashboard.Handler(),
	}
}

// actor names who made an admin request, for the timeline: the name the
// client gives (the CLI sends the user's login), with the peer address.
func actor(r *http.Request, given string) string {
	if given == "" {
		given = "operator"
	}
	return fmt.Sprintf("%s (%s)", given, r.RemoteAddr)
}

// PowerRequest is the body of POST /api/v1/admin/nodes/{node}/power.
type PowerRequest struct {
	Action string `json:"action"` // on, off, cycle
	By     string `json:"by,omitempty"`
}

// ApproveRequest is the body of POST /api/v1/admin/enrolments/approve.
type ApproveRequest struct {
	Ref  string `json:"ref"` // serial, MAC or key fingerprint of a pending machine
	As   string `json:"as"`  // node name
	Kind string `json:"kind,omitempty"`
	By   string `json:"by,omitempty"`
}

// ApproveResult is its answer.
type ApproveResult struct {
	Node        string `json:"node"`
	Serial      string `json:"serial"`
	Key         string `json:"key"`
	Fingerprint string `json:"fingerprint"`
	File        string `json:"file"` // the overlay it was written to
}

// apiError is the body of an admin API error.
type apiError struct {
	Error string `json:"error"`
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func adminError(w http.ResponseWriter, status int, err error) {
	adminJSON(w, status, apiError{Error: err.Error()})
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		adminError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return false
	}
	return true
}

func (s *Server) servePower(w http.ResponseWriter, r *http.Request) {
	var req PowerRequest
	if !decodeBody(w, r, &req) {
		return
	}
	st, err := s.bmc.Power(r.Context(), r.PathValue("node"), req.Action, actor(r, req.By))
	switch {
	case errors.Is(err, bmc.ErrUnknownNode):
		adminError(w, http.StatusNotFound, err)
	case errors.Is(err, bmc.ErrBadAction):
		adminError(w, http.StatusBadRequest, err)
	case errors.Is(err, bmc.ErrNoLink), errors.Is(err, bmc.ErrNodeOff):
		adminError(w, http.StatusConflict, err)
	case err != nil:
		adminError(w, http.StatusBadGateway, err)
	default:
		adminJSON(w, http.StatusOK, st)
	}
}

func (s *Server) serveTimeline(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	if _, ok := s.inv.Load().ByName(node); !ok {
		adminError(w, http.StatusNotFound, fmt.Errorf("%w: %s", bmc.ErrUnknownNode, node))
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	evs, err := s.state.Events(r.Context(), node, min(max(limit, 0), 1000))
	if err != nil {
		adminError(w, http.StatusInternalServerError, err)
		return
	}
	adminJSON(w, http.StatusOK, evs)
}

func (s *Server) serveConsoleBoots(w http.ResponseWriter, r *http.Request) {
	boots, err := s.console.Boots(r.PathValue("node"))
	if err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	adminJSON(w, http.StatusOK, boots)
}

// serveConsole writes one boot's console as text (?boot=N, default the
// newest); ?follow=1 keeps the response open and streams new output of
// that node (a later boot starts with a marker line) until the client leaves.
func (s *Server) serveConsole(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("node")
	boot, _ := strconv.ParseUint(r.URL.Query().Get("boot"), 10, 64)
	follow := r.URL.Query().Get("follow") == "1"
	var sub <-chan consolelog.Chunk
	if follow {
		ch, cancel := s.console.Subscribe(node)
		defer cancel()
		sub = ch
	}
	l, err := s.console.Read(node, boot)
	switch {
	case errors.Is(err, consolelog.ErrNoBoot) && follow && boot == 0:
		// nothing yet: wait for the first output
	case errors.Is(err, consolelog.ErrNoBoot):
		adminError(w, http.StatusNotFound, err)
		return
	case err != nil:
		adminError(w, http.StatusBadRequest, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Racklet-Boot", strconv.FormatUint(l.Boot.Boot, 10))
	w.Header().Set("X-Racklet-First-Line", strconv.Itoa(l.FirstLine))
	w.Write(l.Text)
	if !follow {
		return
	}
	rc := http.NewResponseController(w)
	rc.Flush()
	cur := l.Boot.Boot
	heartbeat := time.NewTicker(15 * time.Second)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stopping:
			return
		case <-heartbeat.C:
			if rc.Flush() != nil {
				return
			}
		case c := <-sub:
			if c.Boot < cur || (boot != 0 && c.Boot != boot) {
				continue
			}
			if c.Boot != cur && cur != 0 {
				fmt.Fprintf(w, "\n--- racklet-boot: boot %d ---\n", c.Boot)
			}
			cur = c.Boot
			if _, err := w.Write(c.Data); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}

func (s *Server) servePending(w http.ResponseWriter, r *http.Request) {
	adminJSON(w, http.StatusOK, s.pending(r))
}

// pending lists the pending machines with what DHCP saw of their serials.
func (s *Server) pending(r *http.Request) []enrol.Pending {
	list := s.enrol.List()
	nodes, err := s.state.Nodes(r.Context())
	if err != nil {
		return list
	}
	for i := range list {
		for _, n := range nodes {
			if !n.Known && n.Serial != "" && n.Serial == list[i].Serial {
				list[i].MAC, list[i].Kind = n.MAC, n.Kind
			}
		}
	}
	return list
}

func (s *Server) serveForget(w http.ResponseWriter, r *http.Request) {
	var req ApproveRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := s.enrol.Forget(req.Ref); err != nil {
		adminError(w, http.StatusNotFound, err)
		return
	}
	s.hub.pending()
	w.WriteHeader(http.StatusNoContent)
}
