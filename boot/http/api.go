package httpboot

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/racklet/racklet-boot/store"
)

// maxEventLimit caps ?limit= on the events route.
const maxEventLimit = 100000

// NodeView is one node as the JSON API shows it: the stored node's fields
// (see store.Node for their names) plus its current lease, if any.
type NodeView struct {
	store.Node
	Lease *store.Lease `json:"lease,omitempty"`
}

// NodeList is the body of GET /api/v1/nodes.
type NodeList struct {
	Nodes []NodeView `json:"nodes"`
}

// EventList is the body of GET /api/v1/nodes/{key}/events.
type EventList struct {
	Node   string        `json:"node"`
	Events []store.Event `json:"events"`
}

// APIError is the body of every JSON API error.
type APIError struct {
	Error string `json:"error"`
}

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	if !s.haveNodes(w) {
		return
	}
	ctx := r.Context()
	nodes, err := s.Nodes.Nodes(ctx)
	if err != nil {
		s.apiFailure(w, "list nodes", err)
		return
	}
	leases, err := s.Nodes.Leases(ctx)
	if err != nil {
		s.apiFailure(w, "list leases", err)
		return
	}
	out := NodeList{Nodes: make([]NodeView, 0, len(nodes))}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, NodeView{Node: n, Lease: LeaseFor(n, leases)})
	}
	slices.SortFunc(out.Nodes, func(a, b NodeView) int { return strings.Compare(a.Key, b.Key) })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	if !s.haveNodes(w) {
		return
	}
	n, ok := s.lookupNode(w, r)
	if !ok {
		return
	}
	leases, err := s.Nodes.Leases(r.Context())
	if err != nil {
		s.apiFailure(w, "list leases", err)
		return
	}
	writeJSON(w, http.StatusOK, NodeView{Node: n, Lease: LeaseFor(n, leases)})
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	if !s.haveNodes(w) {
		return
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 0 || l > maxEventLimit {
			writeJSON(w, http.StatusBadRequest, APIError{
				Error: fmt.Sprintf("limit must be a whole number from 0 to %d, got %q", maxEventLimit, v),
			})
			return
		}
		limit = l
	}
	n, ok := s.lookupNode(w, r)
	if !ok {
		return
	}
	events, err := s.Nodes.Events(r.Context(), n.Key, limit)
	if err != nil {
		s.apiFailure(w, "list events", err)
		return
	}
	if events == nil {
		events = []store.Event{}
	}
	writeJSON(w, http.StatusOK, EventList{Node: n.Key, Events: events})
}

// lookupNode finds {key} or answers 404 (or 500) itself.
func (s *Server) lookupNode(w http.ResponseWriter, r *http.Request) (store.Node, bool) {
	key := r.PathValue("key")
	n, ok, err := s.Nodes.Node(r.Context(), key)
	if err != nil {
		s.apiFailure(w, "look up node", err)
		return store.Node{}, false
	}
	if !ok {
		writeJSON(w, http.StatusNotFound, APIError{Error: fmt.Sprintf("node %q not found", key)})
		return store.Node{}, false
	}
	if info := infoFrom(r.Context()); info != nil {
		info.node = n.Key
	}
	return n, true
}

func (s *Server) haveNodes(w http.ResponseWriter) bool {
	if s.Nodes == nil {
		writeJSON(w, http.StatusServiceUnavailable, APIError{Error: "node store is not configured"})
		return false
	}
	return true
}

func (s *Server) apiFailure(w http.ResponseWriter, what string, err error) {
	s.logger().Error("api: "+what, "err", err)
	writeJSON(w, http.StatusInternalServerError, APIError{Error: what + " failed; see the server log"})
}

// LeaseFor picks the node's lease: one naming the node, else one for its MAC.
func LeaseFor(n store.Node, leases []store.Lease) *store.Lease {
	var byMAC *store.Lease
	for i := range leases {
		l := &leases[i]
		if n.Name != "" && l.Node == n.Name {
			return l
		}
		if byMAC == nil && n.MAC != "" && strings.EqualFold(l.MAC, n.MAC) {
			byMAC = l
		}
	}
	return byMAC
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error": "encode response failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
