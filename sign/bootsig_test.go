package sign

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/internal/testutil"
)

var (
	testRSAOnce sync.Once
	testRSAKey  *rsa.PrivateKey
)

// rsaKey is one RSA-2048 key for the package's tests (generating one takes
// a noticeable fraction of a second).
func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	testRSAOnce.Do(func() {
		k, err := GenerateKey(RSA2048)
		if err != nil {
			panic(err)
		}
		testRSAKey = k.(*rsa.PrivateKey)
	})
	return testRSAKey
}

func TestBootSigRoundTrip(t *testing.T) {
	key := rsaKey(t)
	img := bytes.Repeat([]byte("FAT32 boot image "), 4096)
	s, err := SignBootImage(bytes.NewReader(img), key, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	raw := s.Marshal()
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	sum := sha256.Sum256(img)
	if len(lines) != 3 || lines[0] != hex.EncodeToString(sum[:]) || lines[1] != "ts: 1700000000" ||
		!strings.HasPrefix(lines[2], "rsa2048: ") || len(lines[2]) != len("rsa2048: ")+512 {
		t.Fatalf("boot.sig is not in rpi-eeprom-digest's layout:\n%s", raw)
	}
	again, err := SignBootImage(bytes.NewReader(img), key, 1700000000)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Marshal(), raw) {
		t.Error("signing the same image twice gave different boot.sig bytes")
	}
	parsed, err := ParseBootSig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, parsed); diff != "" {
		t.Errorf("parse(marshal) differs (-signed +parsed):\n%s", diff)
	}
	if err := VerifyBootImage(bytes.NewReader(img), parsed, &key.PublicKey); err != nil {
		t.Fatalf("verify own signature: %v", err)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte{}, img...)
	tampered[100] ^= 1
	badSig := *parsed
	badSig.RSA2048 = append([]byte{}, parsed.RSA2048...)
	badSig.RSA2048[0] ^= 1
	unsigned := *parsed
	unsigned.RSA2048 = nil
	for name, tc := range map[string]struct {
		img []byte
		sig *BootSig
		pub *rsa.PublicKey
	}{
		"other key":      {img, parsed, &other.PublicKey},
		"tampered image": {tampered, parsed, &key.PublicKey},
		"bad signature":  {img, &badSig, &key.PublicKey},
		"unsigned":       {img, &unsigned, &key.PublicKey},
	} {
		t.Run(name, func(t *testing.T) {
			err := VerifyBootImage(bytes.NewReader(tc.img), tc.sig, tc.pub)
			if !errors.Is(err, ErrBootSigMismatch) {
				t.Errorf("VerifyBootImage = %v, want ErrBootSigMismatch", err)
			}
		})
	}
}

func TestParseBootSig(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	sig := strings.Repeat("cd", 256)
	tests := map[string]struct {
		in      string
		want    *BootSig
		wantErr bool
	}{
		"digest only (rpi-eeprom-update)": {in: sum + "\nts: 5\n", want: &BootSig{SHA256: mustHex(sum), TS: 5}},
		"signed":                          {in: sum + "\nts: 1\nrsa2048: " + sig + "\n", want: &BootSig{SHA256: mustHex(sum), TS: 1, RSA2048: mustHex(sig)}},
		"target soc and unknown keys": {in: sum + "\nts: 2\ntarget-soc: bcm2712\nfuture: x\nrsa2048: " + sig,
			want: &BootSig{SHA256: mustHex(sum), TS: 2, TargetSoC: "bcm2712", RSA2048: mustHex(sig)}},
		"crlf and blank lines": {in: sum + "\r\n\r\nts: 3\r\n", want: &BootSig{SHA256: mustHex(sum), TS: 3}},
		"uppercase hex":        {in: strings.ToUpper(sum) + "\nts: 4\n", want: &BootSig{SHA256: mustHex(sum), TS: 4}},
		"empty":                {in: "", wantErr: true},
		"short digest":         {in: sum[:62] + "\nts: 1\n", wantErr: true},
		"sha256sum line":       {in: sum + "  boot.img\nts: 1\n", wantErr: true},
		"no ts":                {in: sum + "\nrsa2048: " + sig + "\n", wantErr: true},
		"negative ts":          {in: sum + "\nts: -1\n", wantErr: true},
		"short signature":      {in: sum + "\nts: 1\nrsa2048: " + sig[:510] + "\n", wantErr: true},
		"no colon":             {in: sum + "\nts 1\n", wantErr: true},
		"too long":             {in: sum + "\nts: 1\n" + strings.Repeat("x: y\n", 1000), wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseBootSig([]byte(tc.in))
			if tc.wantErr {
				if !errors.Is(err, ErrBootSigFormat) {
					t.Fatalf("ParseBootSig = %v, %v; want ErrBootSigFormat", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestBootSigOpenSSL checks the format against the real openssl both ways:
// openssl dgst -verify accepts our signature under the keygen public key,
// and we accept a boot.sig made the way rpi-eeprom-digest makes it (openssl
// dgst -sign with a key from openssl genrsa).
func TestBootSigOpenSSL(t *testing.T) {
	openssl := testutil.NeedTool(t, "openssl")
	dir := t.TempDir()
	img := filepath.Join(dir, "boot.img")
	content := make([]byte, 3<<20+17)
	rand.Read(content)
	if err := os.WriteFile(img, content, 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	t.Run("openssl verifies ours", func(t *testing.T) {
		prefix := filepath.Join(dir, "racklet")
		priv, err := GenerateKey(RSA2048)
		if err != nil {
			t.Fatal(err)
		}
		if err := WriteKeyPair(prefix, priv, []byte("pw"), false); err != nil {
			t.Fatal(err)
		}
		key, err := LoadBootKey(prefix+".key", []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		f, _ := os.Open(img)
		s, err := SignBootImage(f, key, 1234)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := ParseBootSig(s.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		sigBin := filepath.Join(dir, "sig.bin")
		os.WriteFile(sigBin, parsed.RSA2048, 0o644)
		out := run("dgst", "-sha256", "-verify", prefix+".pub", "-signature", sigBin, img)
		if !strings.Contains(string(out), "Verified OK") {
			t.Fatalf("openssl did not verify: %s", out)
		}
		// And refuses it for another image.
		other := filepath.Join(dir, "other.img")
		os.WriteFile(other, content[1:], 0o644)
		if out, err := exec.Command(openssl, "dgst", "-sha256", "-verify", prefix+".pub", "-signature", sigBin, other).CombinedOutput(); err == nil {
			t.Fatalf("openssl verified the signature over another image: %s", out)
		}
		if _, err := LoadBootKey(prefix+".key", []byte("wrong")); err == nil {
			t.Fatal("wrong passphrase accepted")
		}
	})

	t.Run("ours verifies openssl's", func(t *testing.T) {
		priv := filepath.Join(dir, "private.pem")
		pub := filepath.Join(dir, "public.pem")
		run("genrsa", "-out", priv, "2048")
		run("rsa", "-in", priv, "-pubout", "-out", pub)
		sigBin := filepath.Join(dir, "openssl.sig.bin")
		run("dgst", "-sign", priv, "-keyform", "PEM", "-sha256", "-out", sigBin, img)
		sigRaw, _ := os.ReadFile(sigBin)
		sum := sha256.Sum256(content)
		bootSig := fmt.Sprintf("%x\nts: 1700000001\nrsa2048: %x\n", sum, sigRaw)
		s, err := ParseBootSig([]byte(bootSig))
		if err != nil {
			t.Fatal(err)
		}
		k, err := LoadBootPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyBootImage(bytes.NewReader(content), s, k); err != nil {
			t.Fatalf("openssl's signature does not verify: %v", err)
		}
		// openssl genrsa's plain PEM private key signs the same bytes.
		key, err := LoadBootKey(priv, nil)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := SignBootImage(bytes.NewReader(content), key, 1700000001)
		if err != nil {
			t.Fatal(err)
		}
		if string(ours.Marshal()) != bootSig {
			t.Errorf("our boot.sig differs from the openssl one:\n%s\nwant:\n%s", ours.Marshal(), bootSig)
		}
	})
}

func TestBootKeyErrors(t *testing.T) {
	dir := t.TempDir()
	ec, err := GenerateKey(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(filepath.Join(dir, "ec"), ec, []byte("x"), false); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBootKey(filepath.Join(dir, "ec.key"), []byte("x")); !errors.Is(err, ErrNotRSA2048) {
		t.Errorf("LoadBootKey(ecdsa) = %v, want ErrNotRSA2048", err)
	}
	if _, err := LoadBootPublicKey(filepath.Join(dir, "ec.pub")); !errors.Is(err, ErrNotRSA2048) {
		t.Errorf("LoadBootPublicKey(ecdsa) = %v, want ErrNotRSA2048", err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignBootImage(strings.NewReader("x"), small, 0); !errors.Is(err, ErrNotRSA2048) {
		t.Errorf("SignBootImage(rsa-1024) = %v, want ErrNotRSA2048", err)
	}
	pkcs1 := filepath.Join(dir, "pkcs1.pem")
	k := rsaKey(t)
	os.WriteFile(pkcs1, pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}), 0o644)
	got, err := LoadBootPublicKey(pkcs1)
	if err != nil || !got.Equal(&k.PublicKey) {
		t.Errorf("LoadBootPublicKey(PKCS#1) = %v, %v", got, err)
	}
	id1, err := KeyID(&k.PublicKey)
	if err != nil || !strings.HasPrefix(id1, "sha256:") || len(id1) != 71 {
		t.Errorf("KeyID = %q, %v", id1, err)
	}
}
