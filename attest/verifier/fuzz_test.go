package verifier_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/serverkey"
)

// FuzzVerify submits arbitrary statements and signatures for an enrolled
// node: the verifier must never panic and never release anything.
func FuzzVerify(f *testing.F) {
	r := newRig(f)
	good := hatlink.Statement{Registers: hatlink.Registers{Mask: hatlink.BootMask}, Serial: "pi-01"}.Append(nil)
	f.Add(good, make([]byte, 64), "")
	f.Add(good[:30], []byte{1}, "ed25519:AAAA")
	f.Add([]byte{}, []byte{}, "x")
	f.Fuzz(func(t *testing.T, stmt, sig []byte, key string) {
		rel, err := r.v.Verify(t.Context(), attest.QuoteSubmission{Node: "pi-01", Key: key, Statement: stmt, Signature: sig})
		if err == nil || len(rel.Secrets) != 0 {
			t.Fatalf("forged quote accepted: %+v, %v", rel, err)
		}
	})
}

// FuzzHandlers sends arbitrary bodies to the attestation API's routes (the
// node-facing ones signed as racklet-boot serves them, and the operator
// ones): no panic, no 5xx, every refusal a JSON error, a quote never
// accepted, a challenge only for a node of the config and always signed.
func FuzzHandlers(f *testing.F) {
	r := newRig(f)
	r.v.PerMinute = 1 << 30
	_, priv, _ := ed25519.GenerateKey(nil)
	signer := serverkey.NewSigner(priv)
	routes := map[string]http.Handler{}
	for p, h := range r.v.NodeRoutes() {
		routes[p] = signer.Sign(h)
	}
	for p, h := range r.v.OperatorRoutes() {
		routes[p] = h
	}
	patterns := slices.Sorted(maps.Keys(routes))
	good := hatlink.Statement{Registers: hatlink.Registers{Mask: hatlink.BootMask}, Serial: "pi-01"}.Append(nil)
	quote, _ := json.Marshal(attest.QuoteSubmission{Node: "pi-01", Statement: good, Signature: make([]byte, 64)})
	for i := range patterns {
		f.Add(uint8(i), []byte(`{"node":"pi-01"}`))
		f.Add(uint8(i), quote)
		f.Add(uint8(i), []byte(`{"node":"pi-02","action":"revoke"}`))
		f.Add(uint8(i), []byte(`{"node":"`+strings.Repeat("x", 300)+`"}`))
		f.Add(uint8(i), []byte(`[`))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		p := patterns[int(route)%len(patterns)]
		method, path, _ := strings.Cut(p, " ")
		if path == "" {
			method, path = http.MethodGet, p
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header.Set(serverkey.NonceHeader, base64.StdEncoding.EncodeToString([]byte("fuzz nonce")))
		rec := httptest.NewRecorder()
		routes[p].ServeHTTP(rec, req)
		res := rec.Result()
		out, _ := io.ReadAll(res.Body)
		switch {
		case res.StatusCode >= 500:
			t.Fatalf("%s %q: %d %s", p, body, res.StatusCode, out)
		case p == verifier.QuotePattern && res.StatusCode/100 == 2:
			t.Fatalf("a fuzzed quote was accepted: %q → %s", body, out)
		case res.StatusCode/100 == 4 && res.StatusCode != http.StatusMethodNotAllowed:
			var eb attest.ErrorBody
			if json.Unmarshal(out, &eb) != nil || eb.Error == "" {
				t.Fatalf("%s %q: refusal %d without a JSON error: %s", p, body, res.StatusCode, out)
			}
		case p == verifier.ChallengePattern && res.StatusCode == http.StatusOK:
			var req attest.ChallengeRequest
			var ch attest.Challenge
			if json.Unmarshal(body, &req) != nil || (req.Node != "pi-01" && req.Node != "pi-02") || json.Unmarshal(out, &ch) != nil || len(ch.Nonce) != 32 {
				t.Fatalf("challenge %q answered %s", body, out)
			}
			if res.Header.Get(serverkey.SignatureHeader) == "" {
				t.Fatal("a challenge answered unsigned")
			}
		}
	})
}
