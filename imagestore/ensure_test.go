package imagestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/sign"
)

// variant copies the built output with another command line in its
// manifest: the same blobs under another manifest digest.
func variant(t *testing.T, cmdline string) string {
	t.Helper()
	src := built(t)
	dst := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{image.BootFile, image.RootFile, image.VerityFile} {
		if err := os.Link(filepath.Join(src, f), filepath.Join(dst, f)); err != nil {
			t.Fatal(err)
		}
	}
	m, err := image.ReadManifest(src)
	if err != nil {
		t.Fatal(err)
	}
	m.Cmdline = cmdline
	m.Disk = nil
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, image.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestEnsureSignedThenCached(t *testing.T) {
	rg := newReg(t)
	d := push(t, rg, "racklet/os", "v1")
	s1, v1k := key(t)
	signDigest(t, rg, "racklet/os", d, s1)
	st := open(t, rg)
	ctx := context.Background()
	img, err := st.Ensure(ctx, rg.host+"/racklet/os:v1", []v1Verifier{v1k})
	if err != nil {
		t.Fatal(err)
	}
	want, err := image.ReadManifest(built(t))
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != d || img.Manifest.Verity.RootHash != want.Verity.RootHash || img.Manifest.Cmdline != want.Cmdline {
		t.Errorf("Ensure = digest %s root hash %s; want %s %s", img.Digest, img.Manifest.Verity.RootHash, d, want.Verity.RootHash)
	}
	for path, file := range map[string]string{img.Boot: image.BootFile, img.Root: image.RootFile, img.Verity: image.VerityFile} {
		got, _ := os.ReadFile(path)
		exp, _ := os.ReadFile(filepath.Join(built(t), file))
		if len(exp) == 0 || !bytes.Equal(got, exp) {
			t.Errorf("stored %s (%s) differs from the build's (%d vs %d bytes)", file, path, len(got), len(exp))
		}
	}
	blobs, sigs := rg.requests("/blobs/"), rg.requests("sha256-")
	again, err := st.Ensure(ctx, rg.host+"/racklet/os:v1", []v1Verifier{v1k})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(img.Boot, again.Boot); diff != "" || again.Digest != d {
		t.Errorf("second Ensure differs: %s", diff)
	}
	if b, s := rg.requests("/blobs/"), rg.requests("sha256-"); b != blobs || s != sigs {
		t.Errorf("second Ensure fetched %d blobs and %d signature manifests; want none", b-blobs, s-sigs)
	}
	// A different key set verifies again (and refuses: it is not the signer).
	_, other := key(t)
	if _, err := st.Ensure(ctx, rg.host+"/racklet/os:v1", []v1Verifier{other}); !errors.Is(err, ErrUntrusted) {
		t.Errorf("Ensure with another key = %v, want ErrUntrusted", err)
	}
}

func TestEnsureRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// setup prepares the registry and returns the reference to ensure.
		setup func(t *testing.T, rg *reg, signer signerT) string
		want  []error
	}{
		{"unsigned", func(t *testing.T, rg *reg, _ signerT) string {
			push(t, rg, "racklet/os", "v1")
			return rg.host + "/racklet/os:v1"
		}, []error{ErrUntrusted, sign.ErrNoSignature}},
		{"wrong key", func(t *testing.T, rg *reg, _ signerT) string {
			d := push(t, rg, "racklet/os", "v1")
			other, _ := key(t)
			signDigest(t, rg, "racklet/os", d, other)
			return rg.host + "/racklet/os:v1"
		}, []error{ErrUntrusted, sign.ErrBadSignature}},
		{"signature copied from another digest", func(t *testing.T, rg *reg, s signerT) string {
			a := push(t, rg, "racklet/os", "v1")
			signDigest(t, rg, "racklet/os", a, s)
			b := pushDir(t, rg, variant(t, "console=ttyAMA0 evil=1"), "racklet/os", "v2")
			copyTag(t, rg, "racklet/os", sign.SignatureTag(a), sign.SignatureTag(b))
			return rg.host + "/racklet/os:v2"
		}, []error{ErrUntrusted, sign.ErrDigestMismatch}},
		{"tag moved to an unsigned digest", func(t *testing.T, rg *reg, s signerT) string {
			a := push(t, rg, "racklet/os", "v1")
			signDigest(t, rg, "racklet/os", a, s)
			pushDir(t, rg, variant(t, "console=ttyAMA0 evil=1"), "racklet/os", "v1")
			return rg.host + "/racklet/os:v1"
		}, []error{ErrUntrusted, sign.ErrNoSignature}},
		{"boot blob bytes do not match its digest", func(t *testing.T, rg *reg, s signerT) string {
			d := push(t, rg, "racklet/os", "v1")
			signDigest(t, rg, "racklet/os", d, s)
			boot := bootDigest(t)
			rg.tamper = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+boot.String()) {
					return false
				}
				b, _ := os.ReadFile(filepath.Join(built(t), image.BootFile))
				b[len(b)/2] ^= 0xff
				w.Write(b)
				return true
			}
			return rg.host + "/racklet/os:v1"
		}, []error{ErrTampered}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newReg(t)
			s, v := key(t)
			ref := tc.setup(t, rg, s)
			rg.reset()
			st := open(t, rg)
			img, err := st.Ensure(ctx, ref, []v1Verifier{v})
			if img != nil || err == nil {
				t.Fatalf("Ensure = %+v, %v; want a refusal", img, err)
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("Ensure error %q does not wrap %q", err, w)
				}
			}
			if !IsRefusal(err) {
				t.Errorf("IsRefusal(%q) = false", err)
			}
			if _, serr := os.Stat(st.BlobPath(bootDigest(t))); serr == nil {
				t.Errorf("boot.vfat blob stored despite the refusal")
			}
			if errors.Is(err, ErrUntrusted) && rg.requests(bootDigest(t).Hex) != 0 {
				t.Errorf("boot.vfat fetched before the signature was checked")
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestGCKeepsOnlyReferencedBlobs(t *testing.T) {
	rg := newReg(t)
	s, v := key(t)
	a := push(t, rg, "racklet/os", "v1")
	b := pushDir(t, rg, variant(t, "console=ttyS0"), "racklet/os", "v2")
	signDigest(t, rg, "racklet/os", a, s)
	signDigest(t, rg, "racklet/os", b, s)
	st := open(t, rg)
	ctx := context.Background()
	ia, err := st.Ensure(ctx, rg.host+"/racklet/os:v1", []v1Verifier{v})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Ensure(ctx, rg.host+"/racklet/os:v2", []v1Verifier{v}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(filepath.Dir(ia.Boot), ".tmp-leftover"), []byte("x"), 0o644)
	n, err := st.GC(ctx, []v1.Hash{a})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 { // b's manifest, b's image manifest, the leftover
		t.Errorf("GC removed %d files, want 3", n)
	}
	for _, p := range []string{ia.Boot, ia.Root, ia.Verity, st.BlobPath(a)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("kept blob missing: %v", err)
		}
	}
	if _, err := os.Stat(st.BlobPath(b)); err == nil {
		t.Errorf("manifest %s survived GC", b)
	}
	if _, err := st.GC(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(ia.Boot)); len(ents) != 0 {
		t.Errorf("GC(nil) left %d blobs", len(ents))
	}
	if _, err := st.Ensure(ctx, rg.host+"/racklet/os:v2", []v1Verifier{v}); err != nil {
		t.Errorf("Ensure after GC: %v", err)
	}
}

// TestEnsureBootSig: an image built with a boot signing key carries boot.sig
// as a layer; Ensure stores it and the Booter hands its path to the
// resolver. An image without one has none.
func TestEnsureBootSig(t *testing.T) {
	want, err := image.ReadManifest(built(t))
	if err != nil {
		t.Fatal(err)
	}
	dst := variant(t, want.Cmdline)
	m, err := image.ReadManifest(dst)
	if err != nil {
		t.Fatal(err)
	}
	k, err := sign.GenerateKey(sign.RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(dst, image.BootFile))
	bs, err := sign.SignBootImage(f, k, 42)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sig := bs.Marshal()
	os.WriteFile(filepath.Join(dst, image.BootSigFile), sig, 0o644)
	m.BootSig = &image.BootSigInfo{Blob: image.Blob{File: image.BootSigFile, Size: int64(len(sig)), Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(sig))}, TS: 42}
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dst, image.ManifestFile), b, 0o644)

	rg := newReg(t)
	d := pushDir(t, rg, dst, "racklet/os", "signed-boot")
	s1, v1k := key(t)
	signDigest(t, rg, "racklet/os", d, s1)
	plain := push(t, rg, "racklet/os", "plain")
	signDigest(t, rg, "racklet/os", plain, s1)
	st := open(t, rg)
	img, err := st.Ensure(context.Background(), rg.host+"/racklet/os:signed-boot", []v1Verifier{v1k})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(img.BootSig); img.BootSig == "" || !bytes.Equal(got, sig) {
		t.Fatalf("stored boot.sig %q (%q), want the build's", img.BootSig, got)
	}
	// GC keeps it with its image.
	if _, err := st.GC(context.Background(), []v1.Hash{d}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img.BootSig); err != nil {
		t.Errorf("GC removed the kept image's boot.sig: %v", err)
	}
	img2, err := st.Ensure(context.Background(), rg.host+"/racklet/os:plain", []v1Verifier{v1k})
	if err != nil {
		t.Fatal(err)
	}
	if img2.BootSig != "" {
		t.Errorf("an image without boot.sig got %q", img2.BootSig)
	}
}
