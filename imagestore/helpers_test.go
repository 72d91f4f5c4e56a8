package imagestore

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/racklet/racklet-boot/internal/ociref"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/sign"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// built returns the output directory of one real image build (shared by the
// tests of this package; built once).
func built(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testutil.Unavailable(t, "no /bin/busybox (Debian package busybox-static): "+err.Error())
	}
	buildOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "imagestore-build-")
		if err != nil {
			buildErr = err
			return
		}
		ref, err := imagetest.WriteLayout(filepath.Join(tmp, "base"), imagetest.Options{})
		if err != nil {
			buildErr = err
			return
		}
		buildDir = filepath.Join(tmp, "out")
		_, buildErr = image.Build(context.Background(), image.Spec{Base: ref}, buildDir, image.Options{})
	})
	if buildErr != nil {
		t.Fatalf("build test image: %v", buildErr)
	}
	return buildDir
}

// TestMain removes the shared build.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(filepath.Dir(buildDir))
	}
	os.Exit(code)
}

// reg is an in-memory registry behind an optional tampering handler.
type reg struct {
	host   string
	mu     sync.Mutex
	tamper func(w http.ResponseWriter, r *http.Request) bool // true: handled
	hits   map[string]int                                    // request path -> count
}

func newReg(t *testing.T) *reg {
	t.Helper()
	rg := &reg{hits: map[string]int{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rg.mu.Lock()
		rg.hits[r.Method+" "+r.URL.Path]++
		tamper := rg.tamper
		rg.mu.Unlock()
		if tamper != nil && tamper(w, r) {
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	rg.host = strings.TrimPrefix(srv.URL, "http://")
	return rg
}

// reset forgets the requests made so far.
func (rg *reg) reset() {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	rg.hits = map[string]int{}
}

// requests returns how many requests have been made whose path contains s.
func (rg *reg) requests(s string) int {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	n := 0
	for k, c := range rg.hits {
		if strings.Contains(k, s) {
			n += c
		}
	}
	return n
}

// push pushes the built image to host/repo:tag and returns its digest.
func push(t *testing.T, rg *reg, repo, tag string) v1.Hash {
	t.Helper()
	d, err := artifact.Push(context.Background(), built(t), rg.host+"/"+repo+":"+tag, artifact.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// key makes a signing key and its verifier.
func key(t *testing.T) (signature.SignerVerifier, signature.Verifier) {
	t.Helper()
	priv, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := sign.MarshalPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.ParsePublicKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	return sv, v
}

// signDigest signs host/repo@d.
func signDigest(t *testing.T, rg *reg, repo string, d v1.Hash, s signature.Signer) {
	t.Helper()
	ref, err := name.NewDigest(rg.host+"/"+repo+"@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.Sign(context.Background(), ref, s); err != nil {
		t.Fatal(err)
	}
}

// copyTag points host/repo:to at what host/repo:from names (manifest bytes unchanged).
func copyTag(t *testing.T, rg *reg, repo, from, to string) {
	t.Helper()
	src, err := name.NewTag(rg.host+"/"+repo+":"+from, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.NewTag(rg.host+"/"+repo+":"+to, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(dst, desc); err != nil {
		t.Fatal(err)
	}
}

// open opens a store for the registry in a temp dir.
func open(t *testing.T, rg *reg) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{Registry: ociref.Options{InsecureHosts: []string{rg.host}}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type (
	v1Verifier = signature.Verifier
	signerT    = signature.SignerVerifier
)

// pushDir pushes an output directory to host/repo:tag.
func pushDir(t *testing.T, rg *reg, dir, repo, tag string) v1.Hash {
	t.Helper()
	d, err := artifact.Push(context.Background(), dir, rg.host+"/"+repo+":"+tag, artifact.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// bootDigest is the digest of the built boot.vfat.
func bootDigest(t *testing.T) v1.Hash {
	t.Helper()
	m, err := image.ReadManifest(built(t))
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(m.Boot.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
