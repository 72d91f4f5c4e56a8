// Package adminauth is racklet-boot's check of the operator credential: the
// token it generates into its data directory on first start (mode 0600),
// presented as "Authorization: Bearer <token>", as a dashboard session
// cookie made from it at login, or implied by a connection over the data
// directory's unix socket from root or the service's own user.
//
// Auth.Wrap guards every operator route (boot/server registers them all in
// one place). A browser session is an HttpOnly, SameSite=Strict cookie
// holding an expiry and an HMAC of it under the token; a request that
// changes something with only the cookie must also carry the header
// CSRFHeader (which a cross-site form cannot send, and a cross-site script
// cannot without a CORS preflight racklet-boot never grants) and, when the
// browser says where it comes from (Origin, Sec-Fetch-Site), come from the
// same origin. Token and cookie comparisons take constant time.
//
// The client side is internal/adminclient.
package adminauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/internal/adminclient"
	"github.com/racklet/racklet-boot/internal/atomicfile"
	"github.com/racklet/racklet-boot/internal/ratelimit"
)

// Names the dashboard and the browser see.
const (
	// CookieName is the dashboard session cookie.
	CookieName = "racklet_session"
	// CSRFHeader must accompany a cookie-authenticated request that changes
	// something (any method but GET, HEAD and OPTIONS); its value is "1".
	CSRFHeader = "X-Racklet-Csrf"
	// SessionTTL is how long a dashboard login lasts.
	SessionTTL = 12 * time.Hour
)

// Auth checks the operator credential. Make it with Open or New.
type Auth struct {
	token []byte
	log   *slog.Logger
	now   func() time.Time
	login *ratelimit.Window
}

// New checks token. log may be nil.
func New(token string, log *slog.Logger) *Auth {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Auth{token: []byte(token), log: log, now: time.Now, login: ratelimit.New(10, time.Minute)}
}

// Open loads the token of the data directory dir, generating it on first
// start (32 random bytes, base64url, mode 0600). A token file others can
// read is refused: whoever reads it is an operator.
func Open(dir string, log *slog.Logger) (*Auth, string, error) {
	path := filepath.Join(dir, adminclient.TokenFile)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, "", fmt.Errorf("generate the operator token: %w", err)
		}
		tok := base64.RawURLEncoding.EncodeToString(b[:])
		if err := atomicfile.Write(path, []byte(tok+"\n"), 0o600); err != nil {
			return nil, "", fmt.Errorf("write the operator token: %w", err)
		}
		return New(tok, log), path, nil
	case err != nil:
		return nil, "", fmt.Errorf("read the operator token: %w", err)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, "", fmt.Errorf("operator token %s has mode %v: others can read it; chmod 600 it (or remove it to make a new one)", path, fi.Mode().Perm())
	}
	tok, err := adminclient.ReadToken(path)
	if err != nil {
		return nil, "", err
	}
	if len(tok) < 16 {
		return nil, "", fmt.Errorf("operator token %s is %d characters: at least 16 (remove it to make a new one)", path, len(tok))
	}
	return New(tok, log), path, nil
}

// Token is the operator token (for callers that hand it to a client in the
// same process).
func (a *Auth) Token() string { return string(a.token) }

// tokenOK compares in constant time (hashes first, so the length does not
// show either).
func (a *Auth) tokenOK(given string) bool {
	x, y := sha256.Sum256([]byte(given)), sha256.Sum256(a.token)
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// session is a cookie value: the expiry (unix seconds) and its HMAC under
// the token, so a new token ends every session.
func (a *Auth) session(exp int64) string {
	m := hmac.New(sha256.New, a.token)
	fmt.Fprintf(m, "racklet-boot dashboard session\x00%d", exp)
	return strconv.FormatInt(exp, 10) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (a *Auth) sessionOK(v string) bool {
	expText, _, ok := strings.Cut(v, ".")
	exp, err := strconv.ParseInt(expText, 10, 64)
	if !ok || err != nil || a.now().Unix() >= exp {
		return false
	}
	return hmac.Equal([]byte(a.session(exp)), []byte(v))
}

// How a request proved it is an operator's.
type how int

const (
	none how = iota
	bySocket
	byToken
	byCookie
)

func (a *Auth) check(r *http.Request) how {
	if IsLocal(r.Context()) {
		return bySocket
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if strings.EqualFold(scheme, "Bearer") && a.tokenOK(strings.TrimSpace(tok)) {
			return byToken
		}
		return none // a wrong token is not rescued by a cookie
	}
	if c, err := r.Cookie(CookieName); err == nil && a.sessionOK(c.Value) {
		return byCookie
	}
	return none
}

// Wrap lets only operators through to h: over the socket, with the token,
// or with a dashboard session (plus the CSRF checks for changes). Others
// get 401 (a browser asking for a dashboard page is sent to the login), or
// 403 for a cookie request that fails the CSRF checks.
func (a *Auth) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch a.check(r) {
		case bySocket, byToken:
			h.ServeHTTP(w, r)
			return
		case byCookie:
			if err := csrf(r); err != nil {
				a.log.Warn("operator request refused: cross-site", "ip", r.RemoteAddr, "path", r.URL.Path, "err", err)
				refuse(w, http.StatusForbidden, err.Error())
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		a.log.Info("operator request without a valid credential", "ip", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, UIPrefix) && strings.Contains(r.Header.Get("Accept"), "text/html") {
			http.Redirect(w, r, LoginPath, http.StatusSeeOther)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="racklet-boot"`)
		refuse(w, http.StatusUnauthorized, "operator credential required: a bearer token (racklet-boot's "+adminclient.TokenFile+"), a dashboard login, or racklet-boot's unix socket")
	})
}

// safeMethod is a method that changes nothing.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// csrf checks a cookie-authenticated request: a change needs CSRFHeader,
// and where the browser names the request's origin it must be this server.
func csrf(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return fmt.Errorf("a %s request from another site (Sec-Fetch-Site %s)", r.Method, site)
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" && !sameOrigin(o, r.Host) {
		return fmt.Errorf("a %s request from origin %s", r.Method, o)
	} else if o == "null" && !safeMethod(r.Method) {
		return errors.New("a change from an opaque origin")
	}
	if !safeMethod(r.Method) && r.Header.Get(CSRFHeader) != "1" {
		return fmt.Errorf("a %s with a session cookie but without the %s header", r.Method, CSRFHeader)
	}
	return nil
}

func sameOrigin(origin, host string) bool {
	rest, ok := strings.CutPrefix(origin, "http://")
	if !ok {
		rest, ok = strings.CutPrefix(origin, "https://")
	}
	return ok && strings.EqualFold(rest, host)
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

type localKey struct{}

// WithLocal marks ctx as a connection from a local operator (the socket's
// accepted peers); IsLocal reads it.
func WithLocal(ctx context.Context) context.Context { return context.WithValue(ctx, localKey{}, true) }

// IsLocal reports whether the request came over the operator socket.
func IsLocal(ctx context.Context) bool { v, _ := ctx.Value(localKey{}).(bool); return v }
