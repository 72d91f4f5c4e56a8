package adminclient

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFlags: which client the flags make, and which token it presents.
func TestFlags(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, TokenFile), []byte("from-data-dir\n"), 0o600)
	named := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(named, []byte("  from-file \n"), 0o600)
	tests := []struct {
		name      string
		f         Flags
		env       string // RACKLET_TOKEN
		wantBase  string
		wantToken string
	}{
		{"socket by default", Flags{DataDir: dir}, "", socketBase, ""},
		{"remote, token file", Flags{Server: "http://10.0.0.2", TokenFile: named, DataDir: dir}, "from-env", "http://10.0.0.2", "from-file"},
		{"remote, token in the environment", Flags{Server: "http://10.0.0.2", DataDir: dir}, "from-env", "http://10.0.0.2", "from-env"},
		{"remote on the server's host", Flags{Server: "http://10.0.0.2", DataDir: dir}, "", "http://10.0.0.2", "from-data-dir"},
		{"remote, no token anywhere", Flags{Server: "http://10.0.0.2", DataDir: t.TempDir()}, "", "http://10.0.0.2", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvToken, tc.env)
			c, err := tc.f.Client()
			if err != nil {
				t.Fatal(err)
			}
			if c.Base != tc.wantBase || c.Token != tc.wantToken {
				t.Errorf("client %s with token %q, want %s with %q", c.Base, c.Token, tc.wantBase, tc.wantToken)
			}
		})
	}
	if _, err := (&Flags{Server: "http://x", TokenFile: filepath.Join(dir, "missing")}).Client(); err == nil {
		t.Error("a missing --token-file was not an error")
	}
}

func TestDoPresentsTheTokenAndReportsRefusals(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"operator credential required"}`))
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	var out struct{ OK bool }
	if err := HTTP(srv.URL, "s3cret").JSON(t.Context(), "GET", "/api/v1/admin/rack", nil, &out); err != nil || !out.OK {
		t.Fatalf("with the token: %v %+v", err, out)
	}
	err := HTTP(srv.URL, "").JSON(t.Context(), "GET", "/api/v1/admin/rack", nil, &out)
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || !strings.Contains(err.Error(), "--token-file") {
		t.Errorf("without: %v, want a 401 saying how to give the token", err)
	}
}
