package serverkey

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestOpenMakesAndKeepsTheKey(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{PrivateFile: 0o600, PublicFile: 0o644} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %v", name, err, mode)
		}
	}
	pub, err := ReadPublic(filepath.Join(dir, PublicFile))
	if err != nil || !pub.Equal(a.Public()) {
		t.Fatalf("public file %v: %v", pub, err)
	}
	os.Remove(filepath.Join(dir, PublicFile))
	b, err := Open(dir)
	if err != nil || !b.Public().Equal(a.Public()) {
		t.Fatalf("reopened: %v, same key %v", err, b != nil && b.Public().Equal(a.Public()))
	}
	if _, err := os.Stat(filepath.Join(dir, PublicFile)); err != nil {
		t.Error("the public file was not written again")
	}
	os.Chmod(filepath.Join(dir, PrivateFile), 0o644)
	if _, err := Open(dir); err == nil {
		t.Error("a readable private key was accepted")
	}
}

// server answers every path with its body, signed; record keeps the last
// raw answer the wire carried.
func server(t *testing.T, s *Signer, tamper func(w http.ResponseWriter, body []byte, h http.Header) bool) *httptest.Server {
	signed := s.Sign(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"you-sent":"`+string(b)+`","path":"`+r.URL.Path+`"}`)
	}))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		signed.ServeHTTP(rec, r)
		if tamper != nil && tamper(w, rec.Body.Bytes(), rec.Header()) {
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestTransport(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	s := NewSigner(priv)
	other, _, _ := ed25519.GenerateKey(nil)
	var mu sync.Mutex
	var recorded []byte
	var recordedSig string
	tests := []struct {
		name   string
		key    ed25519.PublicKey
		tamper func(w http.ResponseWriter, body []byte, h http.Header) bool
		want   error
	}{
		{"signed", s.Public(), nil, nil},
		{"another server's key", other, nil, ErrBadSignature},
		{"a byte changed", s.Public(), func(w http.ResponseWriter, b []byte, h http.Header) bool {
			w.Header().Set(SignatureHeader, h.Get(SignatureHeader))
			w.Write(bytes.Replace(b, []byte("you-sent"), []byte("you-Sent"), 1))
			return true
		}, ErrBadSignature},
		{"signature stripped", s.Public(), func(w http.ResponseWriter, b []byte, h http.Header) bool {
			w.Write(b)
			return true
		}, ErrUnsigned},
		{"garbage signature", s.Public(), func(w http.ResponseWriter, b []byte, h http.Header) bool {
			w.Header().Set(SignatureHeader, "!!")
			w.Write(b)
			return true
		}, ErrBadSignature},
		{"an earlier answer replayed", s.Public(), func(w http.ResponseWriter, b []byte, h http.Header) bool {
			mu.Lock()
			defer mu.Unlock()
			if recorded == nil {
				recorded, recordedSig = b, h.Get(SignatureHeader)
				w.Header().Set(SignatureHeader, recordedSig)
				w.Write(b)
				return true
			}
			w.Header().Set(SignatureHeader, recordedSig)
			w.Write(recorded)
			return true
		}, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := server(t, s, tc.tamper)
			hc := Client(nil, tc.key)
			post := func() (string, error) {
				resp, err := hc.Post(srv.URL+"/api/v1/attest/quote", "application/json", strings.NewReader("q"))
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return string(b), nil
			}
			body, err := post()
			if tc.name == "an earlier answer replayed" {
				if err != nil {
					t.Fatalf("first answer: %v", err)
				}
				_, err = post() // same request, same bytes answered: another nonce
			}
			if tc.want == nil {
				if err != nil || !strings.Contains(body, `"you-sent":"q"`) {
					t.Fatalf("answer %q, %v", body, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestAnswerBoundToTheQuestion: a signed answer to one path or body does
// not pass for another.
func TestAnswerBoundToTheQuestion(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	s := NewSigner(priv)
	nonce := []byte("0123456789abcdef0123456789abcdef")
	sig := ed25519.Sign(priv, message("GET", "/api/v1/agent/whoami", 200, nonce, nil, []byte(`{"node":"pi-01"}`)))
	for _, m := range [][]byte{
		message("POST", "/api/v1/attest/challenge", 200, nonce, nil, []byte(`{"node":"pi-01"}`)),
		message("GET", "/api/v1/agent/whoami", 200, []byte("another nonce"), nil, []byte(`{"node":"pi-01"}`)),
		message("GET", "/api/v1/agent/whoami", 200, nonce, []byte("x"), []byte(`{"node":"pi-01"}`)),
		message("GET", "/api/v1/agent/whoami", 404, nonce, nil, []byte(`{"node":"pi-01"}`)),
		message("GET", "/api/v1/agent/whoami", 200, nonce, nil, []byte(`{"node":"pi-02"}`)),
	} {
		if ed25519.Verify(s.Public(), m, sig) {
			t.Errorf("the signature verified for %q", m)
		}
	}
}

func TestUnsignedErrorsPassThrough(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	s := NewSigner(priv)
	srv := httptest.NewServer(s.Sign(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"refused"}`, http.StatusForbidden)
	})))
	defer srv.Close()
	resp, err := Client(nil, s.Public()).Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get(SignatureHeader) != "" {
		t.Errorf("status %d, signature %q: want an unsigned 403 passed on", resp.StatusCode, resp.Header.Get(SignatureHeader))
	}
}
