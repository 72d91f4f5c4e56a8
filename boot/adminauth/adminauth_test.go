package adminauth

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/adminclient"
	"github.com/racklet/racklet-boot/internal/testutil"
)

func TestOpenMakesAndKeepsTheToken(t *testing.T) {
	dir := t.TempDir()
	a, path, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file %s: %v, mode %v; want 0600", path, err, fi.Mode().Perm())
	}
	if len(a.Token()) < 40 {
		t.Errorf("token %q is short", a.Token())
	}
	b, _, err := Open(dir, nil)
	if err != nil || b.Token() != a.Token() {
		t.Fatalf("reopened: %v, token changed: %v", err, b.Token() != a.Token())
	}
	os.Chmod(path, 0o644)
	if _, _, err := Open(dir, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable token was accepted: %v", err)
	}
}

// TestWrap: every way in and every way refused, one request each.
func TestWrap(t *testing.T) {
	a := New("the-operator-token-0123456789", nil)
	now := time.Unix(1_800_000_000, 0)
	a.now = func() time.Time { return now }
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret inventory") })
	h := a.Wrap(ok)
	good := a.session(now.Add(time.Hour).Unix())
	tests := []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		cookie string
		local  bool
		want   int
	}{
		{"no credential", "GET", "/api/v1/admin/rack", nil, "", false, 401},
		{"bearer", "GET", "/api/v1/admin/rack", map[string]string{"Authorization": "Bearer the-operator-token-0123456789"}, "", false, 200},
		{"bearer, lower-case scheme", "POST", "/api/v1/admin/x", map[string]string{"Authorization": "bearer the-operator-token-0123456789"}, "", false, 200},
		{"wrong bearer", "GET", "/api/v1/admin/rack", map[string]string{"Authorization": "Bearer the-operator-token-012345678"}, "", false, 401},
		{"wrong bearer with a good cookie", "GET", "/api/v1/admin/rack", map[string]string{"Authorization": "Bearer nope"}, good, false, 401},
		{"basic auth", "GET", "/api/v1/admin/rack", map[string]string{"Authorization": "Basic dGhlLW9wZXJhdG9y"}, "", false, 401},
		{"socket", "POST", "/api/v1/admin/x", nil, "", true, 200},
		{"session read", "GET", "/api/v1/admin/rack", nil, good, false, 200},
		{"session change with the CSRF header", "POST", "/api/v1/admin/x", map[string]string{CSRFHeader: "1", "Origin": "http://racklet.test", "Sec-Fetch-Site": "same-origin"}, good, false, 200},
		{"session change without the CSRF header", "POST", "/api/v1/admin/x", map[string]string{"Origin": "http://racklet.test"}, good, false, 403},
		{"session change from another origin", "POST", "/api/v1/admin/x", map[string]string{CSRFHeader: "1", "Origin": "http://evil.test"}, good, false, 403},
		{"session change cross-site", "POST", "/api/v1/admin/x", map[string]string{CSRFHeader: "1", "Sec-Fetch-Site": "cross-site"}, good, false, 403},
		{"session read cross-site", "GET", "/api/v1/admin/rack", map[string]string{"Sec-Fetch-Site": "cross-site"}, good, false, 403},
		{"expired session", "GET", "/api/v1/admin/rack", nil, a.session(now.Add(-time.Second).Unix()), false, 401},
		{"forged session", "GET", "/api/v1/admin/rack", nil, "1900000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false, 401},
		{"session of another token", "GET", "/api/v1/admin/rack", nil, New("another-token-000000000000", nil).session(now.Add(time.Hour).Unix()), false, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, "http://racklet.test"+tc.path, nil)
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: tc.cookie})
			}
			if tc.local {
				r = r.WithContext(WithLocal(r.Context()))
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
			if tc.want != 200 && strings.Contains(rec.Body.String(), "secret") {
				t.Error("refused, but the handler ran")
			}
		})
	}
}

// TestLoginFlow: a browser without a session is sent to the login page,
// signs in with the token (a wrong one is refused), gets an HttpOnly
// SameSite=Strict cookie that opens the dashboard, and signs out.
func TestLoginFlow(t *testing.T) {
	a := New("the-operator-token-0123456789", nil)
	mux := http.NewServeMux()
	mux.Handle("/ui/", a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "the rack") })))
	mux.Handle(LoginPath, a.LoginHandler())
	mux.Handle(LogoutPath, a.LoginHandler())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	req, _ := http.NewRequest("GET", srv.URL+"/ui/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != LoginPath {
		t.Fatalf("dashboard without a session: %d to %q, want 303 to the login", resp.StatusCode, resp.Header.Get("Location"))
	}
	login := func(token, origin string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+LoginPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := login("wrong", ""); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("wrong token: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if resp := login(a.Token(), "http://evil.test"); resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
		t.Errorf("login from another site: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp = login(a.Token(), srv.URL)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("login: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	c := resp.Cookies()[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Name != CookieName || strings.Contains(c.Value, a.Token()) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not the token itself", c)
	}
	req, _ = http.NewRequest("GET", srv.URL+"/ui/", nil)
	req.AddCookie(c)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "the rack" {
		t.Errorf("dashboard with the session: %d %q", resp.StatusCode, body)
	}
	req, _ = http.NewRequest("POST", srv.URL+LogoutPath, nil)
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("logout cookies %v, want the session cleared", cs)
	}
	// Logins are bounded per address.
	n := 0
	for range 20 {
		if login("wrong", "").StatusCode == http.StatusTooManyRequests {
			n++
		}
	}
	if n < 10 {
		t.Errorf("%d of 20 rapid logins refused as too many, want at least 10", n)
	}
}

// TestSocketPeers: over the socket, root and the server's user are
// operators; another user cannot connect (mode 0600), and is closed at
// once even when the mode would let it (SO_PEERCRED).
func TestSocketPeers(t *testing.T) {
	testutil.NeedRoot(t, "a client of another uid")
	curl := testutil.NeedTool(t, "curl")
	dir, err := os.MkdirTemp("", "racklet-sock-") // t.TempDir's parent is 0700: nobody could not reach it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, adminclient.SocketFile)
	logs := &syncBuffer{}
	s, err := ListenSocket(t.Context(), path, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	a := New("the-operator-token-0123456789", nil)
	testutil.Serve(t, func(ctx context.Context) error {
		return ServeSocket(ctx, s, a.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })))
	})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	resp, err := adminclient.Unix(path).Do(t.Context(), "GET", "/api/v1/admin/rack", nil)
	if err != nil {
		t.Fatalf("root over the socket: %v", err)
	}
	resp.Body.Close()
	asNobody := func() (string, error) {
		cmd := exec.CommandContext(t.Context(), curl, "-sS", "--max-time", "5", "--unix-socket", path, "http://racklet-boot/api/v1/admin/rack")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := asNobody(); err == nil || strings.Contains(out, "ok") {
		t.Errorf("nobody reached the socket: %q, %v", out, err)
	}
	if strings.Contains(logs.String(), "uid=65534") {
		t.Error("nobody connected through a mode 0600 socket")
	}
	// A mode that lets it connect: the peer check closes it at once.
	os.Chmod(path, 0o666)
	if out, err := asNobody(); err == nil || strings.Contains(out, "ok") {
		t.Errorf("nobody was served over a world-writable socket: %q, %v", out, err)
	}
	if !strings.Contains(logs.String(), "uid=65534") {
		t.Errorf("no refusal of uid 65534 logged: %s", logs)
	}
	if _, err := ListenSocket(t.Context(), path, nil); err == nil {
		t.Error("a second server took over a live socket")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
