package join

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/attest"
)

func TestParseToken(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"abcdef.0123456789abcdef", true},
		{"a1b2c3.zzzzzzzzzzzzzzzz", true},
		{"ABCDEF.0123456789abcdef", false}, // upper case
		{"abcdef0123456789abcdef", false},  // no dot
		{"abcde.0123456789abcdef", false},  // short id
		{"abcdef.0123456789abcde", false},  // short secret
		{"abcdef.0123456789abcdefg", false},
		{"abcdef.0123456789abcde-", false},
		{"racklet-join-c2VjcmV0", false}, // the old random string
		{"", false},
	} {
		tok, err := ParseToken(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseToken(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
		if err == nil && tok.String() != tc.in {
			t.Errorf("ParseToken(%q).String() = %q", tc.in, tok.String())
		}
	}
}

func TestNewTokenParses(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		tok := NewToken()
		if _, err := ParseToken(tok.String()); err != nil {
			t.Fatalf("NewToken() = %q: %v", tok, err)
		}
		if seen[tok.ID] {
			t.Fatalf("token id %s drawn twice in 200", tok.ID)
		}
		seen[tok.ID] = true
	}
}

func TestTokenGoStringHidesSecret(t *testing.T) {
	tok := Token{ID: "abcdef", Secret: "0123456789abcdef"}
	if s := tok.GoString(); strings.Contains(s, tok.Secret) || !strings.Contains(s, tok.ID) {
		t.Errorf("GoString = %s", s)
	}
}

// TestCAHash checks against the value openssl gives for the same
// certificate (openssl x509 -pubkey | openssl pkey -pubin -outform der |
// sha256sum), which is how the kubeadm documentation computes it.
func TestCAHash(t *testing.T) {
	data, err := os.ReadFile("testdata/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/ca.crt.hash")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := CAHash(c); got != strings.TrimSpace(string(want)) {
		t.Errorf("CAHash = %s, want %s", got, want)
	}
	hs, err := CAHashesPEM(append(append([]byte("junk\n"), data...), data...))
	if err != nil || len(hs) != 2 || hs[0] != CAHash(c) {
		t.Errorf("CAHashesPEM = %v, %v", hs, err)
	}
	if _, err := CAHashesPEM([]byte("no pem here")); err == nil {
		t.Error("CAHashesPEM accepted no certificate")
	}
}

func TestInfo(t *testing.T) {
	h := "sha256:" + strings.Repeat("ab", 32)
	good := Info{APIServer: "10.0.0.2:6443", Token: "abcdef.0123456789abcdef", CACertHashes: []string{h}}
	for _, tc := range []struct {
		name string
		j    Info
		bad  string // substring of the error; "" = valid
	}{
		{"good", good, ""},
		{"ipv6", Info{APIServer: "[fd00::2]:6443", Token: good.Token, CACertHashes: good.CACertHashes}, ""},
		{"no port", Info{APIServer: "10.0.0.2", Token: good.Token, CACertHashes: good.CACertHashes}, "want host:port"},
		{"port zero", Info{APIServer: "10.0.0.2:0", Token: good.Token, CACertHashes: good.CACertHashes}, "is not 1-65535"},
		{"bad token", Info{APIServer: good.APIServer, Token: "secret", CACertHashes: good.CACertHashes}, "not a bootstrap token"},
		{"no hash", Info{APIServer: good.APIServer, Token: good.Token}, "at least one"},
		{"bad hash", Info{APIServer: good.APIServer, Token: good.Token, CACertHashes: []string{"md5:00"}}, "sha256:<64 hex digits>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := tc.j.Marshal()
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("Marshal: %v, want an error with %q", err, tc.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseInfo(data)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.j, back); d != "" {
				t.Errorf("round trip (-want +got):\n%s", d)
			}
		})
	}
	want := []string{"join", "10.0.0.2:6443", "--token", "abcdef.0123456789abcdef", "--discovery-token-ca-cert-hash", h, "--node-name", "pi-01"}
	if got := good.Args("pi-01"); !slices.Equal(got, want) {
		t.Errorf("Args = %q, want %q", got, want)
	}
	if _, err := ParseInfo([]byte(`{"apiServer":"x:1"`)); err == nil {
		t.Error("ParseInfo accepted truncated JSON")
	}
}

func FuzzParseInfo(f *testing.F) {
	f.Add([]byte(`{"apiServer":"10.0.0.2:6443","token":"abcdef.0123456789abcdef","caCertHashes":["sha256:` + strings.Repeat("0", 64) + `"]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ParseInfo(data)
		if err != nil {
			return
		}
		again, err := j.Marshal()
		if err != nil {
			t.Fatalf("a parsed join does not marshal: %v", err)
		}
		if _, err := ParseInfo(again); err != nil {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// TestSecretName: the verifier releases the join facts under the name the
// node looks for.
func TestSecretName(t *testing.T) {
	if SecretName != attest.SecretKubernetesJoin {
		t.Errorf("join.SecretName %q, attest.SecretKubernetesJoin %q", SecretName, attest.SecretKubernetesJoin)
	}
}
