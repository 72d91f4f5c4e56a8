package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/serverkey"
)

// plantedKey is the disk key a machine in the path wants the node to use.
var plantedKey = []byte("attacker-chosen disk key, 32 b!!")

// mitm is a proxy between the agent and racklet-boot that rewrites answers.
type mitm struct {
	mode string // "plant", "strip", "replay", "" (pass)
	mu   sync.Mutex
	last map[string]*http.Response // path → an earlier answer, for replay
	seen []byte                    // the earlier answer's body
}

func (m *mitm) proxy(t *testing.T, target string) *httptest.Server {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	var quoted struct {
		sync.Mutex
		st hatlink.Statement
	}
	director := rp.Director
	rp.Director = func(r *http.Request) {
		director(r)
		if strings.HasSuffix(r.URL.Path, "/quote") && r.Body != nil {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			var q attest.QuoteSubmission
			if json.Unmarshal(b, &q) == nil {
				if st, err := hatlink.ParseStatement(q.Statement); err == nil {
					quoted.Lock()
					quoted.st = st
					quoted.Unlock()
				}
			}
		}
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		path := resp.Request.URL.Path
		switch {
		case m.mode == "plant" && strings.HasSuffix(path, "/quote") && resp.StatusCode == 200:
			// Wrap our own disk key to the HAT's public box key, bound to the
			// registers it quoted: the HAT would open it.
			var rel attest.Release
			json.Unmarshal(b, &rel)
			quoted.Lock()
			env, err := hatlink.Wrap(rand.Reader, quoted.st.BoxKey, quoted.st.Registers, plantedKey)
			quoted.Unlock()
			if err != nil {
				t.Errorf("wrap the planted key: %v", err)
			}
			for i := range rel.Secrets {
				if rel.Secrets[i].Name == attest.SecretDiskKey {
					rel.Secrets[i].Envelope = env
				}
			}
			b, _ = json.Marshal(rel)
		case m.mode == "strip":
			resp.Header.Del(serverkey.SignatureHeader)
		case m.mode == "replay" && strings.HasSuffix(path, "/challenge"):
			if m.seen == nil {
				m.seen = b
				resp.Header.Set("X-Kept-Signature", resp.Header.Get(serverkey.SignatureHeader))
				m.last = map[string]*http.Response{path: resp}
			} else {
				b = m.seen
				resp.Header.Set(serverkey.SignatureHeader, m.last[path].Header.Get(serverkey.SignatureHeader))
			}
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		resp.Header.Del("Content-Length")
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv
}

// TestMITMCannotPlantADiskKey: racklet-boot behind a proxy that rewrites
// its answers. Without the signature check, the proxy's planted disk key
// is what the node's HAT opens (the attack is real); with it, every
// rewritten, stripped or replayed answer is refused before it is used, and
// the direct path still attests.
func TestMITMCannotPlantADiskKey(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	dev, err := hatsim.Open(filepath.Join(dir, "hat.json"), hatsim.Options{Serial: "5b154510"})
	if err != nil {
		t.Fatal(err)
	}
	hat, err := hatlink.NewClient(ctx, hatlink.Direct(dev))
	if err != nil {
		t.Fatal(err)
	}
	enr, sec, err := verifier.OpenDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := files(t, "kernel v1")
	v := &verifier.Verifier{Enrollments: enr, Secrets: sec,
		Expected: verifier.ExpectedFunc(func(context.Context, string) (attest.Measurements, error) { return good, nil })}
	if _, err := v.Enroll(ctx, "pi-01", hatlink.EncodeKey(dev.Identity().SignKey)); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(nil)
	signer := serverkey.NewSigner(priv)
	real := httptest.NewServer(signer.Sign(v.Handler()))
	defer real.Close()
	want, _ := sec.Secrets(ctx, "pi-01")

	// The attack, unchecked: the node's HAT opens the planted key.
	plant := (&mitm{mode: "plant"}).proxy(t, real.URL)
	if _, err := agent.Measure(ctx, hat, good); err != nil {
		t.Fatal(err)
	}
	api := &attest.Client{Server: plant.URL} // no ServerKey: answers taken as they come
	ch, err := api.Challenge(ctx, "pi-01")
	if err != nil {
		t.Fatal(err)
	}
	q, err := hat.Quote(ctx, [32]byte(ch.Nonce), hatlink.BootMask)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := api.Quote(ctx, attest.QuoteSubmission{Node: "pi-01", Statement: q.Statement, Signature: q.Signature[:]})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rel.Secrets {
		if s.Name == attest.SecretDiskKey {
			got, err := hat.Unwrap(ctx, s.Envelope)
			if err != nil || !bytes.Equal(got, plantedKey) {
				t.Fatalf("the unchecked path did not show the attack: %q, %v", got, err)
			}
		}
	}

	// The same attacks against the agent, which checks every answer.
	opts := agent.Options{Node: "pi-01", Measurements: good, ServerKey: signer.Public()}
	for _, mode := range []string{"plant", "strip", "replay"} {
		t.Run(mode, func(t *testing.T) {
			m := &mitm{mode: mode}
			o := opts
			o.Server = m.proxy(t, real.URL).URL
			if mode == "replay" { // one good exchange to record
				if _, err := agent.Attest(ctx, hat, o); err != nil {
					t.Fatalf("the recorded exchange: %v", err)
				}
			}
			res, err := agent.Attest(ctx, hat, o)
			if err == nil || len(res.Secrets) != 0 {
				t.Fatalf("attested through a %s proxy: %+v", mode, res.Secrets)
			}
			if !errors.Is(err, serverkey.ErrBadSignature) && !errors.Is(err, serverkey.ErrUnsigned) {
				t.Errorf("err = %v, want a signature refusal", err)
			}
			t.Logf("%s: %v", mode, err)
		})
	}
	o := opts
	o.Server = real.URL
	res, err := agent.Attest(ctx, hat, o)
	if err != nil || string(res.Secrets[attest.SecretDiskKey]) != string(want.DiskKey) {
		t.Fatalf("direct: %v, disk key released %v", err, err == nil)
	}
}
