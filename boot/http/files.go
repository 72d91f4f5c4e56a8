package httpboot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/store"
)

const (
	// eventTimeout bounds recording one http.get event after a transfer.
	eventTimeout = 5 * time.Second
	// statusClientClosed is logged when the client left before the reply
	// (nginx's 499).
	statusClientClosed = 499
)

// serveBoot serves /boot/{name...}: the resolver gets the rest of the path.
// A directory name (empty or ending in "/") is 404 without asking.
func (s *Server) serveBoot(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "" || strings.HasSuffix(name, "/") {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	s.serveFile(w, r, name)
}

// serveIPXE serves /ipxe/{mac}/boot.ipxe, which the resolver generates.
func (s *Server) serveIPXE(w http.ResponseWriter, r *http.Request) {
	s.serveFile(w, r, r.PathValue("mac")+"/boot.ipxe")
}

// serveFallback takes every request no other route claimed: the Raspberry
// Pi EEPROM HTTP boot files (any directory, default "net_install"), 405 for
// other methods on the built-in GET routes, else 404.
func (s *Server) serveFallback(w http.ResponseWriter, r *http.Request) {
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	name, isPi := piBootName(segs)
	if isPi {
		if info := infoFrom(r.Context()); info != nil {
			info.route = "pi"
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if isPi || getOnly(segs) {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
	} else if isPi {
		s.serveFile(w, r, name)
		return
	}
	http.Error(w, "not found", http.StatusNotFound)
}

// getOnly reports whether segs is under one of the built-in GET routes.
func getOnly(segs []string) bool {
	switch segs[0] {
	case "boot", "ipxe", "healthz", "metrics":
		return true
	case "api":
		return len(segs) >= 3 && segs[1] == "v1" && segs[2] == "nodes"
	}
	return false
}

// serveFile resolves name for the requesting client and sends it with
// http.ServeContent (Range, conditional requests, HEAD). An *os.File content
// reaches sendfile through ServeContent's io.Copy.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	if s.Files == nil {
		http.Error(w, "boot files are not configured", http.StatusServiceUnavailable)
		return
	}
	ctx := r.Context()
	client := clientAddr(r)
	f, err := s.Files.Open(ctx, resolve.Request{Client: client, Name: name, Via: "http"})
	if err != nil {
		s.fileError(w, r, name, err)
		return
	}
	defer f.Close()
	info := infoFrom(ctx)
	if info != nil {
		info.node, info.file = f.Node, f.Path
	}

	h := w.Header()
	if f.ETag != "" {
		h.Set("ETag", f.ETag)
	}
	h.Set("Content-Type", contentType(name))
	rec, _ := w.(*recorder)
	var before int64
	if rec != nil {
		before = rec.bytes
	}
	http.ServeContent(w, r, path.Base(name), f.ModTime, f.Content)

	if r.Method == http.MethodHead || s.Events == nil || f.Node == "" || rec == nil {
		return
	}
	status := rec.status
	if status != http.StatusOK && status != http.StatusPartialContent {
		return
	}
	// Hand the tail of the body to the client before the store's fsync.
	_ = http.NewResponseController(w).Flush()
	want, _ := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	s.recordGet(ctx, r, f, status, rec.bytes-before, want)
}

// recordGet adds an http.get event to the node's log: n bytes sent of want
// (the Content-Length; 0 when unknown, as for multi-range replies). It runs
// after the body is handed to the connection and does not depend on the
// client staying connected.
func (s *Server) recordGet(ctx context.Context, r *http.Request, f *resolve.File, status int, n, want int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventTimeout)
	defer cancel()
	detail := f.Path
	if detail == "" {
		detail = r.URL.Path
	}
	if status == http.StatusPartialContent {
		detail += " range " + r.Header.Get("Range")
	}
	if want > 0 && n < want {
		detail += fmt.Sprintf(" (incomplete: %d of %d bytes)", n, want)
	}
	ev := store.Event{Time: time.Now().UTC(), Node: f.Node, Type: "http.get", Detail: detail, Bytes: n}
	if err := s.Events.AddEvent(ctx, ev); err != nil {
		s.logger().Warn("record http.get event", "node", f.Node, "file", f.Path, "err", err)
	}
}

// fileError maps a resolver error to a short text response.
func (s *Server) fileError(w http.ResponseWriter, r *http.Request, name string, err error) {
	log := s.logger()
	switch {
	case errors.Is(err, os.ErrNotExist):
		log.Debug("boot file not found", "file", name, "ip", clientAddr(r).String(), "err", err)
		http.Error(w, "not found", http.StatusNotFound)
	case errors.Is(err, resolve.ErrRefused):
		log.Info("boot file refused", "file", name, "ip", clientAddr(r).String(), "err", err)
		http.Error(w, "forbidden", http.StatusForbidden)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away while the resolver worked; nobody reads the
		// reply, but logs and metrics show 499 as nginx does.
		log.Debug("client gone before boot file resolved", "name", name, "err", err)
		http.Error(w, "client closed request", statusClientClosed)
	default:
		log.Error("resolve boot file", "file", name, "ip", clientAddr(r).String(), "err", err)
		http.Error(w, fmt.Sprintf("internal error resolving %q", name), http.StatusInternalServerError)
	}
}

// contentType names the type of a boot file from its name: text for scripts,
// configs and signatures, bytes for everything else. Setting it spares
// http.ServeContent a sniffing read and keeps replies the same on every host
// (mime.TypeByExtension reads the system's tables).
func contentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".ipxe"), strings.HasSuffix(name, ".txt"),
		strings.HasSuffix(name, ".cfg"), strings.HasSuffix(name, ".sig"):
		return "text/plain; charset=utf-8"
	default:
		return "application/octet-stream"
	}
}
