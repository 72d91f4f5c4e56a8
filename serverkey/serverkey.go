// Package serverkey signs the answers racklet-boot gives the node agent and
// checks them on the node, so that a machine in the path of plain HTTP on
// the rack LAN cannot hand a node another name, nonce, disk key or join
// token.
//
// racklet-boot generates an Ed25519 key into its data directory on first
// start (PrivateFile, mode 0600; the public half in PublicFile). The image
// builder puts the public key into the initramfs (racklet-image build
// --server-key, at bootparams.ServerKeyFile), where the signed manifest
// pins it, and the agent accepts only answers signed by it.
//
// The signature covers what the agent asked and what it got, so an answer
// cannot be replayed or moved to another question. The agent sends a fresh
// random nonce in NonceHeader; racklet-boot signs, with its key,
//
//	"racklet-boot answer v1\n" METHOD " " PATH "\n" STATUS "\n"
//	hex(nonce) "\n" hex(sha256(request body)) "\n" hex(sha256(answer body))
//
// and sends the signature, base64, in SignatureHeader. Only 200 answers
// are signed and checked: anything else is a failure to the agent anyway
// (a machine in the path can always stop a boot; it cannot steer one).
package serverkey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/internal/atomicfile"
)

// Names in racklet-boot's data directory and on the wire.
const (
	PrivateFile     = "server-key.pem" // PKCS#8 PEM, mode 0600
	PublicFile      = "server.pub"     // "ed25519:<base64>", as HAT keys are written
	NonceHeader     = "Racklet-Nonce"
	SignatureHeader = "Racklet-Signature"
	// MaxAnswer bounds an answer that is signed or checked.
	MaxAnswer = 1 << 20
	maxNonce  = 64
)

// Errors of Transport.
var (
	ErrUnsigned     = errors.New("answer is not signed")
	ErrBadSignature = errors.New("answer's signature does not verify under the server key")
)

// Signer is racklet-boot's answer-signing key.
type Signer struct {
	priv ed25519.PrivateKey
}

// NewSigner signs with priv.
func NewSigner(priv ed25519.PrivateKey) *Signer { return &Signer{priv: priv} }

// Open loads the key of the data directory dir, generating it (and its
// public file) on first start. A private key others can read is refused.
func Open(dir string) (*Signer, error) {
	path := filepath.Join(dir, PrivateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate the server key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("write the server key: %w", err)
		}
		s := NewSigner(priv)
		return s, s.writePublic(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("read the server key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("server key %s has mode %v: others can read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("server key %s is not a PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	priv, ok := k.(ed25519.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("server key %s is not an Ed25519 key (%v)", path, err)
	}
	s := NewSigner(priv)
	// The public file is derived: rewrite it if it is missing or stale.
	if got, err := os.ReadFile(filepath.Join(dir, PublicFile)); err != nil || string(bytes.TrimSpace(got)) != s.PublicText() {
		return s, s.writePublic(dir)
	}
	return s, nil
}

func (s *Signer) writePublic(dir string) error {
	if err := atomicfile.Write(filepath.Join(dir, PublicFile), []byte(s.PublicText()+"\n"), 0o644); err != nil {
		return fmt.Errorf("write the server's public key: %w", err)
	}
	return nil
}

// Public is the key answers verify under.
func (s *Signer) Public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// PublicText is Public as PublicFile holds it.
func (s *Signer) PublicText() string { return hatlink.EncodeKey([32]byte(s.Public())) }

// ParsePublic reads a public key in PublicFile's form.
func ParsePublic(text string) (ed25519.PublicKey, error) {
	k, err := hatlink.ParseKey(text)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	return k, nil
}

// ReadPublic reads a PublicFile.
func ReadPublic(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the server key: %w", err)
	}
	return ParsePublic(string(b))
}

// message is what is signed (see the package comment).
func message(method, path string, status int, nonce, reqBody, answer []byte) []byte {
	rq, an := sha256.Sum256(reqBody), sha256.Sum256(answer)
	var b bytes.Buffer
	b.WriteString("racklet-boot answer v1\n")
	b.WriteString(method + " " + path + "\n" + strconv.Itoa(status) + "\n")
	b.WriteString(hex.EncodeToString(nonce) + "\n" + hex.EncodeToString(rq[:]) + "\n" + hex.EncodeToString(an[:]))
	return b.Bytes()
}

// nonceOf reads a request's nonce; none (or a malformed one) is empty.
func nonceOf(h http.Header) []byte {
	n, err := base64.StdEncoding.DecodeString(h.Get(NonceHeader))
	if err != nil || len(n) > maxNonce {
		return nil
	}
	return n
}

// Sign wraps h: its 200 answers (at most MaxAnswer bytes) carry the
// signature over the request and the answer.
func (s *Signer) Sign(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reqBody, err := io.ReadAll(io.LimitReader(r.Body, MaxAnswer+1))
		if err != nil {
			http.Error(w, "read the request: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(reqBody) > MaxAnswer {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		rec := &buffered{header: http.Header{}}
		h.ServeHTTP(rec, r)
		status := cmp(rec.status, http.StatusOK)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		if rec.body.Len() > MaxAnswer {
			http.Error(w, "answer too large to sign", http.StatusInternalServerError)
			return
		}
		if status == http.StatusOK {
			sig := ed25519.Sign(s.priv, message(r.Method, r.URL.EscapedPath(), status, nonceOf(r.Header), reqBody, rec.body.Bytes()))
			w.Header().Set(SignatureHeader, base64.StdEncoding.EncodeToString(sig))
		}
		w.WriteHeader(status)
		w.Write(rec.body.Bytes())
	})
}

func cmp(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// buffered holds an answer until it is signed.
type buffered struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *buffered) Header() http.Header { return b.header }
func (b *buffered) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}
func (b *buffered) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len() > MaxAnswer {
		return 0, errors.New("answer too large to sign")
	}
	return b.body.Write(p)
}

// Transport is the agent's side: it adds a fresh nonce to each request and
// passes on a 200 answer only when it is signed under Key for this request.
// Other statuses pass through unchecked (the caller treats them as
// failures).
type Transport struct {
	Key ed25519.PublicKey
	// Base sends the requests; nil is http.DefaultTransport.
	Base http.RoundTripper
}

// Client returns a copy of hc (nil: a default client) whose answers must be
// signed under key.
func Client(hc *http.Client, key ed25519.PublicKey) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	c.Transport = &Transport{Key: key, Base: c.Transport}
	return c
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(t.Key) != ed25519.PublicKeySize {
		return nil, errors.New("no server key to check racklet-boot's answers with")
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(io.LimitReader(req.Body, MaxAnswer+1))
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(reqBody))
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
	out.ContentLength = int64(len(reqBody))
	out.Header.Set(NonceHeader, base64.StdEncoding.EncodeToString(nonce))
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(out)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read racklet-boot's answer to %s %s: %w", req.Method, req.URL.Path, err)
	}
	where := fmt.Sprintf("racklet-boot's answer to %s %s", req.Method, req.URL.Path)
	sig, err := base64.StdEncoding.DecodeString(resp.Header.Get(SignatureHeader))
	switch {
	case resp.Header.Get(SignatureHeader) == "":
		return nil, fmt.Errorf("%s: %w: refused (a machine in the path, or a racklet-boot too old to sign)", where, ErrUnsigned)
	case err != nil || len(answer) > MaxAnswer ||
		!ed25519.Verify(t.Key, message(req.Method, req.URL.EscapedPath(), resp.StatusCode, nonce, reqBody, answer), sig):
		return nil, fmt.Errorf("%s: %w this image carries: refused (changed in the path, replayed, or the image was built for another racklet-boot)", where, ErrBadSignature)
	}
	resp.Body = io.NopCloser(bytes.NewReader(answer))
	resp.ContentLength = int64(len(answer))
	return resp, nil
}
