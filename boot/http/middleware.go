package httpboot

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// reqInfo is what inner handlers tell the logging and metrics middleware
// about a request. It lives in the request context.
type reqInfo struct {
	route string // metrics label: boot, ipxe, pi, api, healthz, metrics, index, mount, other
	node  string // node name once the resolver knows it
	file  string // resolved path inside the node's source
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(infoKey{}).(*reqInfo)
	return info
}

// recorder wraps a ResponseWriter to see the status and count body bytes.
// It forwards ReadFrom so http.ServeContent still reaches sendfile, and
// Unwrap so http.ResponseController finds Flush and deadlines.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps the zero-copy path: net/http's response implements
// io.ReaderFrom and hands an *os.File (or a LimitedReader over one) to the
// TCP connection's sendfile.
func (w *recorder) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		f.Flush()
	}
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe wraps h with request metrics and one log line per request.
func (s *Server) observe(log *slog.Logger, m *metrics, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{route: "other"}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		rec := &recorder{ResponseWriter: w}

		m.inFlight.Inc()
		defer func() {
			m.inFlight.Dec()
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			m.requests.WithLabelValues(info.route, strconv.Itoa(status)).Inc()
			m.bytes.WithLabelValues(info.route).Add(float64(rec.bytes))
			m.duration.WithLabelValues(info.route).Observe(elapsed.Seconds())

			level := slog.LevelInfo
			if info.route == "healthz" || info.route == "metrics" {
				level = slog.LevelDebug
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.EscapedPath()),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", elapsed),
				slog.String("ip", clientAddr(r).String()),
				slog.String("route", info.route),
			}
			if info.node != "" {
				attrs = append(attrs, slog.String("node", info.node))
			}
			if info.file != "" {
				attrs = append(attrs, slog.String("file", info.file))
			}
			if rg := r.Header.Get("Range"); rg != "" {
				attrs = append(attrs, slog.String("range", rg))
			}
			log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		h.ServeHTTP(rec, r)
	})
}

// clientAddr is the TCP peer's address. Forwarding headers are not trusted:
// files are chosen by this address.
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
