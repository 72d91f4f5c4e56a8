package image

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/sign"
)

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := sign.GenerateKey(sign.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

// TestBuildSignsBootImg builds with a boot signing key: boot.sig sits beside
// boot.vfat (which is the Pi's boot.img), the manifest pins it, openssl
// verifies the signature over boot.vfat with the public key, a second build
// gives the same bytes, and the build cache notices a changed key.
func TestBuildSignsBootImg(t *testing.T) {
	openssl := testutil.NeedTool(t, "openssl")
	ref := testBase(t, imagetest.Options{})
	t.Setenv("SOURCE_DATE_EPOCH", "1712345678")
	key := rsaKey(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	spec := Spec{Base: ref, Agent: fakeAgent(t, "arm64")}
	m, err := Build(context.Background(), spec, out, Options{BootKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(out); err != nil {
		t.Fatal(err)
	}
	if m.BootSig == nil || m.BootSig.File != BootSigFile || m.BootSig.TS != 1712345678 {
		t.Fatalf("manifest boot.sig = %+v", m.BootSig)
	}
	id, _ := sign.KeyID(&key.PublicKey)
	if m.BootSig.KeyID != id {
		t.Errorf("key id %s, want %s", m.BootSig.KeyID, id)
	}
	raw, err := os.ReadFile(filepath.Join(out, BootSigFile))
	if err != nil {
		t.Fatal(err)
	}
	bs, err := sign.ParseBootSig(raw)
	if err != nil {
		t.Fatal(err)
	}
	if bs.TS != 1712345678 || "sha256:"+strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]) != m.Boot.Digest {
		t.Errorf("boot.sig %q does not describe boot.vfat %s", raw, m.Boot.Digest)
	}
	pub, _ := sign.MarshalPublicKey(&key.PublicKey)
	os.WriteFile(filepath.Join(dir, "pub.pem"), pub, 0o644)
	os.WriteFile(filepath.Join(dir, "sig.bin"), bs.RSA2048, 0o644)
	o, err := exec.Command(openssl, "dgst", "-sha256", "-verify", filepath.Join(dir, "pub.pem"), "-signature", filepath.Join(dir, "sig.bin"), filepath.Join(out, BootFile)).CombinedOutput()
	if err != nil || !strings.Contains(string(o), "Verified OK") {
		t.Fatalf("openssl dgst -verify of boot.vfat: %v\n%s", err, o)
	}

	again := filepath.Join(dir, "again")
	if _, err := Build(context.Background(), spec, again, Options{BootKey: key, NoCache: true}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ManifestFile, BootFile, BootSigFile} {
		a, _ := os.ReadFile(filepath.Join(out, f))
		b, _ := os.ReadFile(filepath.Join(again, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two signed builds", f)
		}
	}

	// The cache: same key reuses, another key or none rebuilds.
	for name, tc := range map[string]struct {
		key     *rsa.PrivateKey
		wantSig bool
	}{"same key": {key, true}, "other key": {rsaKey(t), true}, "no key": {nil, false}} {
		opts := Options{}
		if tc.key != nil {
			opts.BootKey = tc.key
		}
		m2, err := Build(context.Background(), spec, out, opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		_, statErr := os.Stat(filepath.Join(out, BootSigFile))
		if (m2.BootSig != nil) != tc.wantSig || (statErr == nil) != tc.wantSig {
			t.Errorf("%s: bootSig %+v, boot.sig present %v", name, m2.BootSig, statErr == nil)
		}
		if tc.key != nil {
			want, _ := sign.KeyID(&tc.key.PublicKey)
			if m2.BootSig.KeyID != want {
				t.Errorf("%s: signed by %s, want %s", name, m2.BootSig.KeyID, want)
			}
		}
	}
}

// TestBuildRefusesLargeBootImg: a boot partition past what the bootloader
// loads as boot.img fails a signed build with a clear error; an unsigned
// build of the same size (an A/B disk's boot slot) is fine.
func TestBuildRefusesLargeBootImg(t *testing.T) {
	ref := testBase(t, imagetest.Options{})
	spec := Spec{Base: ref, BootSize: MaxBootImg + 1<<20, Agent: fakeAgent(t, "arm64")}
	_, err := Build(context.Background(), spec, filepath.Join(t.TempDir(), "out"), Options{BootKey: rsaKey(t)})
	if !errors.Is(err, ErrBootImgTooLarge) || !strings.Contains(err.Error(), "97 MiB") || !strings.Contains(err.Error(), "96 MiB") {
		t.Fatalf("signed build of a 97 MiB boot partition: %v, want ErrBootImgTooLarge naming the sizes", err)
	}
	if _, err := Build(context.Background(), spec, filepath.Join(t.TempDir(), "out"), Options{}); err != nil {
		t.Fatalf("unsigned build of the same: %v", err)
	}
}
