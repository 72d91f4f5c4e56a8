// Package dashboard is racklet-boot's rack dashboard: one page of plain
// HTML, CSS and a small script, embedded in the binary (no build step),
// served under Prefix behind the admin credential. It draws the rack as
// slots (power, state, A/B slot and image, attestation), follows changes
// over the admin API's server-sent events (GET /api/v1/admin/stream), and
// has a node page (power buttons, timeline, console) and the pending
// enrolments with an approve form. The data all comes from the admin API
// (boot/server); this package only serves the files.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

// Prefix is where the dashboard is served.
const Prefix = "/ui/"

//go:embed static
var static embed.FS

// Handler serves the dashboard's files under Prefix. The page may load
// only its own files and talk only to its own origin (a strict
// Content-Security-Policy), and is never framed.
func Handler() http.Handler {
	sub, _ := fs.Sub(static, "static")
	files := http.StripPrefix(Prefix, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
