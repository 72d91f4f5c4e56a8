package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/sign"
)

// peerEnv is added to the environment of the peer tools: set by TestSignCosignInterop.
var peerEnv []string

// runTool runs a peer tool with a bound on time and returns its combined output.
func runTool(t *testing.T, tool string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = append(os.Environ(), peerEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustTool is runTool that fails the test on error.
func mustTool(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := runTool(t, tool, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

// pushRandomImage pushes a small random image to ref and returns its digest reference.
func pushRandomImage(t *testing.T, ref string) name.Digest {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}

// verifyWith runs sign.Verify on ref with the public key files given.
func verifyWith(t *testing.T, ref name.Digest, pubs ...string) error {
	t.Helper()
	var vs []signature.Verifier
	for _, p := range pubs {
		v, err := sign.LoadPublicKey(p)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	return sign.Verify(context.Background(), ref, vs)
}

// TestSignCosignInterop checks signatures both ways against the real cosign on Debian's
// docker-registry: racklet-image signs and cosign verifies; cosign signs and sign.Verify
// accepts; each reads the other's private keys; a skopeo copy of the image and its .sig
// tag to another repository keeps verifying.
func TestSignCosignInterop(t *testing.T) {
	need(t, "cosign", "docker-registry", "skopeo")
	host := imagetest.StartRegistry(t)
	work := t.TempDir()
	// cosign and skopeo must talk to nothing but the local registry: keep their caches here
	// and send anything they would fetch from the internet to a closed loopback port.
	peerEnv = []string{"HOME=" + work, "TUF_ROOT=" + filepath.Join(work, "tuf"), "COSIGN_PASSWORD=racklet pass",
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=127.0.0.1,localhost"}
	t.Cleanup(func() { peerEnv = nil })
	t.Setenv("RACKLET_KEY_PASSWORD", "racklet pass")

	rk := filepath.Join(work, "racklet")
	ed := filepath.Join(work, "racklet-ed")
	runImage(t, "keygen", "--prefix", rk)
	runImage(t, "keygen", "--prefix", ed, "--type", "ed25519")
	mustTool(t, "cosign", "generate-key-pair", "--output-key-prefix", filepath.Join(work, "cosign"))
	ck := filepath.Join(work, "cosign")

	cosignVerify := func(ref name.Digest, pub string) (string, error) {
		return runTool(t, "cosign", "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", ref.String())
	}
	cosignSign := func(ref name.Digest, key string) {
		mustTool(t, "cosign", "sign", "--key", key, "--tlog-upload=false", "--allow-insecure-registry", "-y", ref.String())
	}

	t.Run("racklet signs, cosign verifies", func(t *testing.T) {
		ref := pushRandomImage(t, host+"/os/ours:v1")
		out := runImage(t, "sign", host+"/os/ours:v1", "--key", rk+".key", "--insecure")
		if !strings.Contains(out, ref.DigestStr()) {
			t.Errorf("sign printed %q, want the resolved digest %s", out, ref.DigestStr())
		}
		runImage(t, "sign", ref.String(), "--key", ed+".key", "--insecure")
		for _, pub := range []string{rk + ".pub", ed + ".pub"} {
			out, err := cosignVerify(ref, pub)
			if err != nil {
				t.Errorf("cosign verify --key %s refused our signature: %v\n%s", filepath.Base(pub), err, out)
			}
			t.Logf("cosign verify --key %s:\n%s", filepath.Base(pub), out)
		}
		out, err := cosignVerify(ref, ck+".pub")
		if err == nil || !strings.Contains(out, "no matching signatures") {
			t.Errorf("cosign verify with a key that never signed: %v, want no matching signatures:\n%s", err, out)
		}
	})

	t.Run("cosign signs, racklet verifies", func(t *testing.T) {
		ref := pushRandomImage(t, host+"/os/theirs:v1")
		if err := verifyWith(t, ref, ck+".pub"); err == nil {
			t.Fatal("Verify accepted an unsigned image")
		}
		cosignSign(ref, ck+".key")
		if err := verifyWith(t, ref, ck+".pub"); err != nil {
			t.Fatalf("Verify refused cosign's signature: %v", err)
		}
		if err := verifyWith(t, ref, rk+".pub"); err == nil {
			t.Fatal("Verify accepted cosign's signature under another key")
		}
		out := runImage(t, "verify", host+"/os/theirs:v1", "--key", ck+".pub", "--insecure")
		if !strings.Contains(out, ref.DigestStr()) {
			t.Errorf("verify printed %q, want the digest", out)
		}
	})

	t.Run("private keys cross over", func(t *testing.T) {
		ref := pushRandomImage(t, host+"/os/keys:v1")
		cosignSign(ref, rk+".key")
		runImage(t, "sign", ref.String(), "--key", ck+".key", "--insecure")
		if err := verifyWith(t, ref, rk+".pub"); err != nil {
			t.Errorf("cosign signing with our key: %v", err)
		}
		if out, err := cosignVerify(ref, ck+".pub"); err != nil {
			t.Errorf("racklet-image signing with cosign's key: %v\n%s", err, out)
		}
		// cosign signs with Ed25519ph by default: Verify accepts that too.
		edRef := pushRandomImage(t, host+"/os/keys-ed:v1")
		cosignSign(edRef, ed+".key")
		if err := verifyWith(t, edRef, ed+".pub"); err != nil {
			t.Errorf("cosign signing with our Ed25519 key: %v", err)
		}
	})

	t.Run("skopeo copy keeps signatures", func(t *testing.T) {
		ref := pushRandomImage(t, host+"/os/src:v1")
		runImage(t, "sign", ref.String(), "--key", rk+".key", "--insecure")
		cosignSign(ref, ck+".key")
		d, _ := v1.NewHash(ref.DigestStr())
		sigTag := sign.SignatureTag(d)
		for _, p := range [][2]string{{"@" + ref.DigestStr(), ":v1"}, {":" + sigTag, ":" + sigTag}} {
			mustTool(t, "skopeo", "copy", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
				"docker://"+host+"/os/src"+p[0], "docker://"+host+"/copies/dst"+p[1])
		}
		copied, err := name.NewDigest(host+"/copies/dst@"+ref.DigestStr(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifyWith(t, copied, rk+".pub"); err != nil {
			t.Errorf("Verify of the copy: %v", err)
		}
		if err := verifyWith(t, copied, ck+".pub"); err != nil {
			t.Errorf("Verify of the copy with cosign's key: %v", err)
		}
		if out, err := cosignVerify(copied, rk+".pub"); err != nil {
			t.Errorf("cosign verify of the copy: %v\n%s", err, out)
		}
	})

	t.Run("layout signature travels with skopeo", func(t *testing.T) {
		dir := filepath.Join(work, "layout")
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		img, err := random.Image(512, 1)
		if err != nil {
			t.Fatal(err)
		}
		// skopeo's oci: transport lists only OCI manifests; random.Image makes a Docker one.
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{sign.RefNameAnnotation: "v1"})); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		runImage(t, "sign", "oci-layout:"+dir+":v1", "--key", rk+".key", "--identity", host+"/fromlayout/pi")
		runImage(t, "verify", "oci-layout:"+dir+"@"+d.String(), "--key", rk+".pub")
		sigTag := sign.SignatureTag(d)
		for _, tag := range []string{"v1", sigTag} {
			mustTool(t, "skopeo", "copy", "--preserve-digests", "--dest-tls-verify=false",
				"oci:"+dir+":"+tag, "docker://"+host+"/fromlayout/pi:"+tag)
		}
		ref, err := name.NewDigest(host+"/fromlayout/pi@"+d.String(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := cosignVerify(ref, rk+".pub"); err != nil {
			t.Errorf("cosign verify of a layout signature pushed by skopeo: %v\n%s", err, out)
		}
	})
}
