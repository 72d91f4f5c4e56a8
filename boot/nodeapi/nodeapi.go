// Package nodeapi is racklet-boot's node-facing API for racklet-agent:
// "who am I" by the client's address (with the A/B decision for the boot),
// and boot stage reports recorded in the node's timeline as store events of
// type "agent.<stage>"; the reports that end a boot (healthy, failed) also
// go to the A/B machine. The wire types
// and paths are bootparams' (AgentPathPrefix). Both routes are open to the
// LAN, so they are bounded: a report body is at most
// bootparams.MaxReportSize, each client address gets a few reports a
// minute, and a report is only taken for the node at the client's address.
package nodeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/internal/ratelimit"
	"github.com/racklet/racklet-boot/store"
)

// Directory answers "which node is at this address?" (the server: its
// leases, then the kernel's neighbour table).
type Directory interface {
	NodeAt(ctx context.Context, a netip.Addr) (node string, ok bool, err error)
}

// DirectoryFunc adapts a function to Directory.
type DirectoryFunc func(ctx context.Context, a netip.Addr) (string, bool, error)

// NodeAt implements Directory.
func (f DirectoryFunc) NodeAt(ctx context.Context, a netip.Addr) (string, bool, error) {
	return f(ctx, a)
}

// EventSink records an event in a node's timeline (store.Store satisfies it).
type EventSink interface {
	AddEvent(ctx context.Context, e store.Event) error
}

// AB is package ab as the node API sees it; the server adapts it.
type AB interface {
	// Decision is what node boots now, for the whoami answer; ok is false
	// for a node that boots no versioned image.
	Decision(node string) (bootparams.SlotBoot, bool)
	// Report takes a node's report that ends a boot (healthy or failed)
	// or carries its HAT's A/B state. Errors are logged, never refused to
	// the node: its report is in the timeline either way.
	Report(ctx context.Context, rep bootparams.Report) error
}

// Defaults of Handler's bounds.
const (
	DefaultReportsPerMinute = 30
	maxReason               = 1024
	maxImage                = 256
)

// Handler serves the node API. Set Nodes and Events; the zero value of the
// rest is usable.
type Handler struct {
	Nodes  Directory
	Events EventSink
	// AB, when set, answers whoami's A/B decision and takes the reports
	// that decide a trial.
	AB AB
	// ReportsPerMinute bounds the reports taken from one client address;
	// 0 means DefaultReportsPerMinute.
	ReportsPerMinute int
	// Log receives refusals and errors; nil discards.
	Log *slog.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time

	once    sync.Once
	reports *ratelimit.Window
}

var nodeRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ServeHTTP implements http.Handler for GET WhoAmIPath and POST ReportPath.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	routes := map[string]struct {
		method string
		serve  func(http.ResponseWriter, *http.Request)
	}{
		bootparams.WhoAmIPath: {http.MethodGet, h.whoami},
		bootparams.ReportPath: {http.MethodPost, h.report},
	}
	rt, ok := routes[r.URL.Path]
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "no such node API path")
	case r.Method != rt.method:
		w.Header().Set("Allow", rt.method)
		writeError(w, http.StatusMethodNotAllowed, "use "+rt.method)
	default:
		rt.serve(w, r)
	}
}

// lookup finds the node at the request's address; when ok is false it has
// answered the request itself.
func (h *Handler) lookup(w http.ResponseWriter, r *http.Request, a netip.Addr) (node string, found, ok bool) {
	node, found, err := h.Nodes.NodeAt(r.Context(), a)
	if err != nil {
		h.log().Error("node api: look up a client address", "ip", a, "err", err)
		writeError(w, http.StatusInternalServerError, "looking up your address failed; see the server log")
		return "", false, false
	}
	return node, found, true
}

func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) {
	a, ok := clientAddr(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "no client address")
		return
	}
	node, found, ok := h.lookup(w, r, a)
	if !ok {
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no node of the rack config is at %s (no lease, no neighbour entry): set racklet.node= on the kernel command line or add the node's MAC", a))
		return
	}
	ans := bootparams.WhoAmI{Node: node}
	if h.AB != nil {
		if d, ok := h.AB.Decision(node); ok {
			ans.Boot = &d
		}
	}
	writeJSON(w, http.StatusOK, ans)
}

func (h *Handler) report(w http.ResponseWriter, r *http.Request) {
	a, ok := clientAddr(r)
	if !ok {
		writeError(w, http.StatusBadRequest, "no client address")
		return
	}
	if !h.allow(a) {
		h.log().Warn("node api: too many reports from one address", "ip", a)
		writeError(w, http.StatusTooManyRequests, "too many reports from this address; try again in a minute")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, bootparams.MaxReportSize))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("a report is at most %d bytes", bootparams.MaxReportSize))
		return
	} else if err != nil {
		writeError(w, http.StatusBadRequest, "read the report: "+err.Error())
		return
	}
	var rep bootparams.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		writeError(w, http.StatusBadRequest, "the report is not JSON: "+err.Error())
		return
	}
	if err := validate(rep); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	node, found, ok := h.lookup(w, r, a)
	if !ok {
		return
	}
	if !found || node != rep.Node {
		held := "no node"
		if found {
			held = "node " + node
		}
		h.log().Warn("node api: report refused: the address is not the node's", "node", rep.Node, "ip", a, "holder", held)
		writeError(w, http.StatusForbidden, fmt.Sprintf("%s is %s, not node %s: reports are only taken from a node's own address", a, held, rep.Node))
		return
	}
	ev := store.Event{Time: h.now().UTC(), Node: rep.Node, Type: "agent." + rep.Stage, Detail: detail(rep)}
	if err := h.Events.AddEvent(r.Context(), ev); err != nil {
		h.log().Error("node api: record a report", "node", rep.Node, "err", err)
		writeError(w, http.StatusInternalServerError, "recording the report failed; see the server log")
		return
	}
	if h.AB != nil && (rep.Stage == bootparams.StageHealthy || rep.Stage == bootparams.StageFailed || rep.HAT != nil) {
		if err := h.AB.Report(r.Context(), rep); err != nil {
			h.log().Error("node api: a/b report", "node", rep.Node, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// detail is the event's human-readable line.
func detail(r bootparams.Report) string {
	var parts []string
	if !r.OK {
		parts = append(parts, "FAILED")
	}
	if r.Reason != "" {
		parts = append(parts, r.Reason)
	}
	if r.Image != "" {
		parts = append(parts, "image "+r.Image)
	}
	return strings.Join(parts, "; ")
}

func validate(r bootparams.Report) error {
	switch {
	case !nodeRe.MatchString(r.Node):
		return fmt.Errorf("node %q is not a node name", r.Node)
	case !slices.Contains(bootparams.Stages, r.Stage):
		return fmt.Errorf("stage %q: want one of %s", r.Stage, strings.Join(bootparams.Stages, ", "))
	case r.Stage == bootparams.StageFailed && r.OK:
		return errors.New("a failed stage cannot be ok")
	case len(r.Reason) > maxReason:
		return fmt.Errorf("reason of %d bytes: at most %d", len(r.Reason), maxReason)
	case len(r.Image) > maxImage:
		return fmt.Errorf("image of %d bytes: at most %d", len(r.Image), maxImage)
	case strings.ContainsFunc(r.Reason+r.Image, func(c rune) bool { return c < 0x20 || c == 0x7f }):
		return errors.New("reason and image must be one line without control characters")
	case r.HAT != nil:
		return validateHAT(*r.HAT)
	}
	return nil
}

// validateHAT checks a HAT A/B state: slot names and the counts an 8-bit
// counter holds.
func validateHAT(s bootparams.HATState) error {
	if s.Committed != "a" && s.Committed != "b" {
		return fmt.Errorf("hat committed slot %q: want a or b", s.Committed)
	}
	for _, n := range []int{s.Limit, s.Attempts[0], s.Attempts[1]} {
		if n < 0 || n > 255 {
			return fmt.Errorf("hat count %d: want 0 to 255", n)
		}
	}
	return nil
}

// allow counts one report from a; false past the per-minute bound.
func (h *Handler) allow(a netip.Addr) bool {
	h.once.Do(func() {
		limit := h.ReportsPerMinute
		if limit <= 0 {
			limit = DefaultReportsPerMinute
		}
		h.reports = ratelimit.New(limit, time.Minute)
	})
	return h.reports.Allow(a, h.now())
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

func clientAddr(r *http.Request) (netip.Addr, bool) {
	a := ratelimit.ClientAddr(r)
	return a, a.IsValid()
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
