package sign

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func parseHash(s string) (v1.Hash, error) { return v1.NewHash(s) }

func TestParsePayload(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	good := `{"critical":{"identity":{"docker-reference":"reg.lan/os/pi"},"image":{"docker-manifest-digest":"` + digest +
		`"},"type":"cosign container image signature"},"optional":null}`
	d, _ := v1.NewHash(digest)
	for name, tc := range map[string]struct {
		in      string
		want    Payload
		wantErr bool
	}{
		"cosign":           {in: good, want: Payload{Identity: "reg.lan/os/pi", Digest: d}},
		"optional":         {in: strings.Replace(good, `"optional":null`, `"optional":{"by":"ci"}`, 1), want: Payload{Identity: "reg.lan/os/pi", Digest: d, Optional: map[string]any{"by": "ci"}}},
		"other type":       {in: strings.Replace(good, "cosign container image signature", "atomic container signature", 1), wantErr: true},
		"short digest":     {in: strings.Replace(good, digest, "sha256:abcd", 1), wantErr: true},
		"sha512 digest":    {in: strings.Replace(good, digest, "sha512:"+strings.Repeat("ab", 64), 1), wantErr: true},
		"trailing data":    {in: good + `{}`, wantErr: true},
		"not json":         {in: "\x00", wantErr: true},
		"empty":            {in: "", wantErr: true},
		"missing critical": {in: `{"optional":null}`, wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParsePayload([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParsePayload error = %v, wantErr %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatal(diff)
			}
		})
	}
}

// FuzzParsePayload checks that no payload crashes the parser and that what it accepts
// names a well-formed sha256 digest.
func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"reg.lan/os/pi"},"image":{"docker-manifest-digest":"sha256:` +
		strings.Repeat("ab", 32) + `"},"type":"cosign container image signature"},"optional":null}`))
	f.Add([]byte(`{"critical":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePayload(b)
		if err != nil {
			return
		}
		if p.Digest.Algorithm != "sha256" || len(p.Digest.Hex) != 64 {
			t.Fatalf("accepted digest %q", p.Digest)
		}
	})
}

// FuzzParsePublicKey checks that no input crashes the public key parser.
func FuzzParsePublicKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParsePublicKey(b)
		if err == nil && v == nil {
			t.Fatal("nil verifier without an error")
		}
	})
}

// FuzzParseBootSig checks that no input crashes the boot.sig parser and
// that what it accepts survives Marshal and a second parse unchanged.
func FuzzParseBootSig(f *testing.F) {
	sum := strings.Repeat("ab", 32)
	f.Add([]byte(sum + "\nts: 1700000000\nrsa2048: " + strings.Repeat("cd", 256) + "\n"))
	f.Add([]byte(sum + "\nts: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseBootSig(b)
		if err != nil {
			return
		}
		if len(s.SHA256) != 32 || s.TS < 0 || (s.RSA2048 != nil && len(s.RSA2048) != 256) {
			t.Fatalf("accepted %+v", s)
		}
		again, err := ParseBootSig(s.Marshal())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", s.Marshal(), err)
		}
		if diff := cmp.Diff(s, again); diff != "" {
			t.Fatalf("round trip differs:\n%s", diff)
		}
	})
}
