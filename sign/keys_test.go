package sign

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func TestKeyPairRoundTrip(t *testing.T) {
	for _, kind := range []KeyType{ECDSAP256, Ed25519} {
		t.Run(string(kind), func(t *testing.T) {
			prefix := filepath.Join(t.TempDir(), "racklet")
			priv, err := GenerateKey(kind)
			if err != nil {
				t.Fatal(err)
			}
			if err := WriteKeyPair(prefix, priv, []byte("s3cret"), false); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(prefix + ".key")
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("private key mode %v, want 0600", fi.Mode().Perm())
			}
			raw, _ := os.ReadFile(prefix + ".key")
			if !bytes.HasPrefix(raw, []byte("-----BEGIN "+cryptoutils.EncryptedSigstorePrivateKeyPEMType+"-----")) {
				t.Errorf("private key is not an encrypted sigstore key:\n%s", raw)
			}
			sv, err := LoadPrivateKey(prefix+".key", []byte("s3cret"))
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("payload")
			sig, err := sv.SignMessage(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			v, err := LoadPublicKey(prefix + ".pub")
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
				t.Fatalf("signature by the loaded key does not verify: %v", err)
			}
			pubPEM, _ := os.ReadFile(prefix + ".pub")
			v2, err := LoadPublicKey(string(pubPEM))
			if err != nil {
				t.Fatal(err)
			}
			if err := v2.VerifySignature(bytes.NewReader(sig), bytes.NewReader([]byte("other"))); err == nil {
				t.Fatal("signature verified over another message")
			}
			if _, err := LoadPrivateKey(prefix+".key", []byte("wrong")); err == nil {
				t.Fatal("wrong passphrase accepted")
			}
			err = WriteKeyPair(prefix, priv, []byte("x"), false)
			if !errors.Is(err, os.ErrExist) {
				t.Fatalf("WriteKeyPair over existing files = %v, want ErrExist", err)
			}
			if err := WriteKeyPair(prefix, priv, []byte("x"), true); err != nil {
				t.Fatalf("WriteKeyPair with overwrite: %v", err)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	if _, err := GenerateKey("rsa-1024"); !errors.Is(err, ErrUnknownKeyType) {
		t.Errorf("GenerateKey(rsa-1024) = %v, want ErrUnknownKeyType", err)
	}
	for name, src := range map[string]string{
		"not pem":     "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n",
		"missing":     filepath.Join(t.TempDir(), "none.pub"),
		"private pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		if _, err := LoadPublicKey(src); err == nil {
			t.Errorf("%s: LoadPublicKey accepted %q", name, src)
		}
	}
	if _, err := ParsePrivateKey([]byte("garbage"), nil); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("ParsePrivateKey(garbage) = %v, want a private key error", err)
	}
}

func TestSignatureTag(t *testing.T) {
	d, err := parseHash("sha256:" + strings.Repeat("0f", 32))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("sha256-"+strings.Repeat("0f", 32)+".sig", SignatureTag(d)); diff != "" {
		t.Fatal(diff)
	}
}
