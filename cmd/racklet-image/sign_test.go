package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/sign"
)

// TestSignCommands drives keygen, sign and verify on an in-memory registry and an OCI layout.
func TestSignCommands(t *testing.T) {
	t.Setenv(passwordEnv, "correct horse")
	dir := t.TempDir()
	for _, kind := range []string{"ecdsa-p256", "ed25519"} {
		if _, err := run("keygen", "--prefix", filepath.Join(dir, kind), "--type", kind); err != nil {
			t.Fatalf("keygen %s: %v", kind, err)
		}
	}
	if _, err := run("keygen", "--out", filepath.Join(dir, "rsa2048"), "--type", "rsa2048"); err != nil {
		t.Fatalf("keygen rsa2048: %v", err)
	}
	if _, err := sign.LoadBootKey(filepath.Join(dir, "rsa2048.key"), []byte("correct horse")); err != nil {
		t.Fatalf("the rsa2048 key does not load as a boot signing key: %v", err)
	}
	if _, err := sign.LoadBootPublicKey(filepath.Join(dir, "rsa2048.pub")); err != nil {
		t.Fatalf("the rsa2048 public key does not load as the Pi's key: %v", err)
	}
	if _, err := run("keygen", "--out", filepath.Join(dir, "ed25519")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("keygen over an existing key = %v, want a refusal", err)
	}

	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/os/pi:v1"
	tag, _ := name.NewTag(ref)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()

	lay := filepath.Join(dir, "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{sign.RefNameAnnotation: "v1"})); err != nil {
		t.Fatal(err)
	}

	for _, target := range []string{ref, "oci-layout:" + lay + ":v1"} {
		ec, ed := filepath.Join(dir, "ecdsa-p256"), filepath.Join(dir, "ed25519")
		if _, err := run("verify", target, "--key", ec+".pub"); err == nil || !strings.Contains(err.Error(), "not signed") {
			t.Fatalf("verify %s before signing = %v, want not signed", target, err)
		}
		out, err := run("sign", target, "--key", ec+".key", "--insecure")
		if err != nil {
			t.Fatalf("sign %s: %v", target, err)
		}
		if !strings.Contains(out, d.String()) {
			t.Errorf("sign printed %q, want the digest %s", out, d)
		}
		if _, err := run("verify", target, "--key", ed+".pub"); err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("verify %s with another key = %v, want a refusal", target, err)
		}
		out, err = run("verify", target, "--key", ed+".pub", "--key", ec+".pub")
		if err != nil {
			t.Fatalf("verify %s: %v", target, err)
		}
		if !strings.Contains(out, "verified") || !strings.Contains(out, d.String()) || !strings.Contains(out, ec+".pub") {
			t.Errorf("verify printed %q, want the digest and the key that verified", out)
		}
	}
}

func TestSignCommandErrors(t *testing.T) {
	t.Setenv(passwordEnv, "")
	os.Unsetenv(passwordEnv)
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"keygen needs --prefix":      {[]string{"keygen"}, "--prefix is required"},
		"keygen unknown type":        {[]string{"keygen", "--out", dir + "/k", "--type", "rsa"}, "unknown key type"},
		"keygen without passphrase":  {[]string{"keygen", "--out", dir + "/k"}, passwordEnv},
		"sign needs --key":           {[]string{"sign", "oci-layout:" + dir}, `"key" not set`},
		"sign docker-archive":        {[]string{"sign", "docker-archive:/x.tar", "--key", "k"}, "registry or an OCI layout"},
		"verify missing layout":      {[]string{"verify", "oci-layout:" + dir + "/none", "--key", dir + "/k.pub"}, "read public key"},
		"verify missing layout(key)": {[]string{"verify", "oci-layout:/nonexistent:v1", "--key", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAO2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=\n-----END PUBLIC KEY-----\n"}, "open OCI layout"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := run(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestCosignPassword: keys made and used with COSIGN_PASSWORD (cosign's
// variable) as the only passphrase; -o json of keygen, sign and verify; an
// unsigned image is refused with exit 77; layout tags complete.
func TestCosignPassword(t *testing.T) {
	t.Setenv(passwordEnv, "")
	os.Unsetenv(passwordEnv)
	t.Setenv(cosignPasswordEnv, "cosign's own")
	dir := t.TempDir()
	out, err := run("keygen", "--prefix", filepath.Join(dir, "k"), "-o", "json")
	var k keys
	if err != nil || json.Unmarshal([]byte(out), &k) != nil || k.Public != filepath.Join(dir, "k.pub") {
		t.Fatalf("keygen -o json: %v\n%s", err, out)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	lay := filepath.Join(dir, "layout")
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"v1", "v2"} {
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{sign.RefNameAnnotation: tag})); err != nil {
			t.Fatal(err)
		}
	}
	ref := "oci-layout:" + lay + ":v1"
	if _, code, err := runCode("verify", ref, "--key", k.Public); code != cli.ExitRefused {
		t.Errorf("verify of an unsigned image: exit %d (%v), want %d", code, err, cli.ExitRefused)
	}
	out, err = run("sign", ref, "--key", k.Private, "-o", "json")
	var s signed
	if err != nil || json.Unmarshal([]byte(out), &s) != nil || !strings.HasPrefix(s.Signature, "sha256-") {
		t.Fatalf("sign -o json: %v\n%s", err, out)
	}
	out, err = run("verify", ref, "--key", k.Public, "-o", "yaml")
	if err != nil || !strings.Contains(out, "signatures:\n  - layer: sha256:") {
		t.Errorf("verify -o yaml: %v\n%s", err, out)
	}
	out, _ = run("__complete", "verify", "oci-layout:"+lay+":")
	if !strings.Contains(out, "oci-layout:"+lay+":v1\n") || !strings.Contains(out, "oci-layout:"+lay+":v2\n") || strings.Contains(out, ".sig") {
		t.Errorf("completion of the layout's tags:\n%s", out)
	}
	out, _ = run("__complete", "inspect", "oci-layout:"+dir+"/la")
	if !strings.Contains(out, "oci-layout:"+dir+"/layout/\n") {
		t.Errorf("completion of a layout directory:\n%s", out)
	}
}
