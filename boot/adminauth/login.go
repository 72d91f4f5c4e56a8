package adminauth

import (
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/internal/ratelimit"
)

// The dashboard's login paths.
const (
	UIPrefix   = "/ui/"
	LoginPath  = UIPrefix + "login"
	LogoutPath = UIPrefix + "logout"
)

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>racklet-boot: sign in</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><main class="panel">
<h1>racklet-boot</h1>
<form method="post" action="/ui/login">
<label for="token">Operator token (the file admin.token in racklet-boot's data directory)</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
{{if .}}<p role="alert">{{.}}</p>{{end}}
</form></main></body></html>
`))

// LoginHandler serves GET LoginPath (the form), POST LoginPath (a token in
// the form field "token" → a session cookie and a redirect to the
// dashboard) and POST LogoutPath. Logins are bounded per client address
// (10 a minute) and must come from this server's own page.
func (a *Auth) LoginHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LoginPath, func(w http.ResponseWriter, r *http.Request) { a.page(w, http.StatusOK, "") })
	mux.HandleFunc("POST "+LoginPath, a.serveLogin)
	mux.HandleFunc("POST "+LogoutPath, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
	})
	return mux
}

func (a *Auth) page(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = loginPage.Execute(w, msg)
}

func (a *Auth) serveLogin(w http.ResponseWriter, r *http.Request) {
	ip := ratelimit.ClientAddr(r)
	if !a.login.Allow(ip, a.now()) {
		a.log.Warn("dashboard login refused: too many attempts", "ip", ip)
		a.page(w, http.StatusTooManyRequests, "Too many attempts from this address: wait a minute.")
		return
	}
	if site := r.Header.Get("Sec-Fetch-Site"); (site != "" && site != "same-origin" && site != "none") ||
		(r.Header.Get("Origin") != "" && !sameOrigin(r.Header.Get("Origin"), r.Host)) {
		a.page(w, http.StatusForbidden, "Sign in from racklet-boot's own page.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil || !a.tokenOK(strings.TrimSpace(r.PostForm.Get("token"))) {
		a.log.Warn("dashboard login with a wrong token", "ip", ip)
		a.page(w, http.StatusUnauthorized, "That is not the operator token.")
		return
	}
	exp := a.now().Add(SessionTTL).Unix()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: a.session(exp), Path: "/", MaxAge: int(SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	a.log.Info("dashboard login", "ip", ip)
	http.Redirect(w, r, UIPrefix, http.StatusSeeOther)
}
