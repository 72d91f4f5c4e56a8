package httpboot

import (
	"html/template"
	"net/http"
	"sort"

	"github.com/racklet/racklet-boot/internal/version"
)

// indexPage is what GET / answers: a person who opens the server's address
// in a browser learns what it is and where to look.
var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>racklet-boot</title></head>
<body>
<h1>racklet-boot</h1>
<p>Network boot server for a Racklet rack, version {{.Version}}.</p>
<ul>
<li><a href="/api/v1/nodes">/api/v1/nodes</a>: the rack's nodes, their leases and boot events (JSON)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: health check</li>
{{range .Mounts}}<li>{{.}}</li>
{{end}}</ul>
<p>Boot files are under /boot/, iPXE scripts under /ipxe/.</p>
</body></html>
`))

// serveIndex answers GET / with indexPage.
func (s *Server) serveIndex(w http.ResponseWriter, _ *http.Request) {
	mounts := make([]string, 0, len(s.Mounts))
	for p := range s.Mounts {
		mounts = append(mounts, p)
	}
	sort.Strings(mounts)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, struct {
		Version string
		Mounts  []string
	}{version.String(), mounts})
}
