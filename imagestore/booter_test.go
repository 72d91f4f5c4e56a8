package imagestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/sign"
)

// signedRack parses a rack config with one Pi node booting ref, trusting pub
// for every repository of host.
func signedRack(t *testing.T, host, ref string, pub []byte) *rack.Config {
	t.Helper()
	var pem strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(pub)), "\n") {
		pem.WriteString("          " + l + "\n")
	}
	y := `apiVersion: racklet.io/v1alpha1
kind: Rack
server: {address: 10.0.0.2}
dhcp: {mode: off}
trust:
  - repositories: ["` + host + `/racklet/*"]
    keys:
      - pem: |
` + pem.String() + `images: {insecure: ["` + host + `"]}
nodes:
  - {name: pi-01, kind: rpi4, serial: 5b154510, boot: {image: "` + ref + `"}}
`
	cfg, err := rack.Parse([]byte(y), filepath.Join(t.TempDir(), "rack.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// rackResolver wires a resolver to a store through a Booter, the way
// racklet-boot serve does, and returns a function to change the config.
func rackResolver(t *testing.T, cfg *rack.Config) (*resolve.Resolver, func(*rack.Config)) {
	t.Helper()
	st, err := Open(t.TempDir(), OptionsFor(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[rack.Config]
	cur.Store(cfg)
	b := &Booter{Store: st, Config: cur.Load, Fresh: -1}
	r := resolve.New(inventory.New(cfg), resolve.Options{Images: resolverImages{b}})
	return r, func(c *rack.Config) { cur.Store(c); r.Update(inventory.New(c)) }
}

// resolverImages hands a Booter's images to a resolver, the way the
// server does (boot/server).
type resolverImages struct{ b *Booter }

func (ri resolverImages) Boot(ctx context.Context, ref string) (*resolve.ImageBoot, error) {
	img, err := ri.b.Boot(ctx, ref)
	if IsRefusal(err) {
		return nil, fmt.Errorf("%w: %w", resolve.ErrRefused, err)
	} else if err != nil {
		return nil, err
	}
	m := img.Manifest
	return &resolve.ImageBoot{FAT: img.Boot, Root: img.Root, Verity: img.Verity, Digest: img.Digest.String(), RootHash: m.Verity.RootHash}, nil
}

func get(t *testing.T, r *resolve.Resolver, name string) ([]byte, error) {
	t.Helper()
	f, err := r.Open(context.Background(), resolve.Request{Name: "5b154510/" + name, Via: "tftp"})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f.Content)
}

func pubPEM(t *testing.T, v v1Verifier) []byte {
	t.Helper()
	pub, err := v.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := sign.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolverServesSignedImage(t *testing.T) {
	rg := newReg(t)
	d := push(t, rg, "racklet/os", "v1")
	s, v := key(t)
	signDigest(t, rg, "racklet/os", d, s)
	cfg := signedRack(t, rg.host, rg.host+"/racklet/os:v1", pubPEM(t, v))
	r, _ := rackResolver(t, cfg)
	m, err := image.ReadManifest(built(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := get(t, r, "config.txt")
	if err != nil || !strings.Contains(string(b), "arm_64bit=1") {
		t.Errorf("config.txt = %q, %v; want the image's", b, err)
	}
	for _, f := range m.Boot.Files {
		if _, err := get(t, r, f); err != nil {
			t.Errorf("boot file %s of the image: %v", f, err)
		}
	}
	root, err := get(t, r, "root.squashfs")
	want, _ := os.ReadFile(filepath.Join(built(t), image.RootFile))
	if err != nil || len(want) == 0 || string(root) != string(want) {
		t.Errorf("root.squashfs: %d bytes, %v; want the image's %d bytes", len(root), err, len(want))
	}
}

func TestResolverRefusesTamperedImages(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, rg *reg, s signerT) string // returns the reference
		why   string
	}{
		{"unsigned", func(t *testing.T, rg *reg, _ signerT) string {
			push(t, rg, "racklet/os", "v1")
			return rg.host + "/racklet/os:v1"
		}, "image is not signed"},
		{"wrong key", func(t *testing.T, rg *reg, _ signerT) string {
			d := push(t, rg, "racklet/os", "v1")
			other, _ := key(t)
			signDigest(t, rg, "racklet/os", d, other)
			return rg.host + "/racklet/os:v1"
		}, "signature does not verify"},
		{"signature of another digest", func(t *testing.T, rg *reg, s signerT) string {
			a := push(t, rg, "racklet/os", "v1")
			signDigest(t, rg, "racklet/os", a, s)
			b := pushDir(t, rg, variant(t, "init=/bin/sh"), "racklet/os", "v2")
			copyTag(t, rg, "racklet/os", sign.SignatureTag(a), sign.SignatureTag(b))
			return rg.host + "/racklet/os:v2"
		}, "signature is for another image digest"},
		{"tag moved to an unsigned digest", func(t *testing.T, rg *reg, s signerT) string {
			a := push(t, rg, "racklet/os", "v1")
			signDigest(t, rg, "racklet/os", a, s)
			pushDir(t, rg, variant(t, "init=/bin/sh"), "racklet/os", "v1")
			return rg.host + "/racklet/os:v1"
		}, "image is not signed"},
		{"tampered boot blob", func(t *testing.T, rg *reg, s signerT) string {
			d := push(t, rg, "racklet/os", "v1")
			signDigest(t, rg, "racklet/os", d, s)
			boot := bootDigest(t)
			rg.tamper = func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+boot.String()) {
					return false
				}
				b, _ := os.ReadFile(filepath.Join(built(t), image.BootFile))
				copy(b[len(b)-16:], "racklet-tampered")
				w.Write(b)
				return true
			}
			return rg.host + "/racklet/os:v1"
		}, "does not match its digest"},
		{"repository no rule covers", func(t *testing.T, rg *reg, s signerT) string {
			d := push(t, rg, "elsewhere/os", "v1")
			signDigest(t, rg, "elsewhere/os", d, s)
			return rg.host + "/elsewhere/os:v1"
		}, "no trust rule covers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newReg(t)
			s, v := key(t)
			ref := tc.setup(t, rg, s)
			cfg := signedRack(t, rg.host, rg.host+"/racklet/os:placeholder", pubPEM(t, v))
			cfg.Nodes[0].Boot.Image = ref // bypasses validation for the uncovered case
			r, _ := rackResolver(t, cfg)
			for _, name := range []string{"config.txt", "start4.elf", "root.squashfs", "root.verity", "cmdline.txt"} {
				b, err := get(t, r, name)
				if !errors.Is(err, resolve.ErrRefused) || b != nil {
					t.Fatalf("%s: %d bytes, %v; want a refusal and no file", name, len(b), err)
				}
				if !strings.Contains(err.Error(), tc.why) {
					t.Errorf("%s refused with %q, want the reason %q", name, err, tc.why)
				}
			}
			t.Logf("refused: %v", func() error { _, err := get(t, r, "config.txt"); return err }())
		})
	}
}

func TestResolverFollowsConfigChange(t *testing.T) {
	rg := newReg(t)
	s, v := key(t)
	a := push(t, rg, "racklet/os", "v1")
	signDigest(t, rg, "racklet/os", a, s)
	pushDir(t, rg, variant(t, "init=/bin/sh"), "racklet/os", "unsigned")
	pub := pubPEM(t, v)
	r, update := rackResolver(t, signedRack(t, rg.host, rg.host+"/racklet/os:v1", pub))
	if _, err := get(t, r, "config.txt"); err != nil {
		t.Fatal(err)
	}
	cfg := signedRack(t, rg.host, rg.host+"/racklet/os:unsigned", pub)
	cfg.Default = &rack.Boot{Image: rg.host + "/racklet/os:v1"}
	st, err := Open(t.TempDir(), OptionsFor(cfg))
	if err != nil {
		t.Fatal(err)
	}
	keep, err := (&Booter{Store: st, Config: func() *rack.Config { return cfg }}).Prefetch(context.Background())
	if len(keep) != 1 || keep[0] != a || !IsRefusal(err) || !errors.Is(err, sign.ErrNoSignature) {
		t.Errorf("Prefetch = %v, %v; want [%s] and the unsigned image refused", keep, err, a)
	}
	update(signedRack(t, rg.host, rg.host+"/racklet/os:unsigned", pub))
	if _, err := get(t, r, "config.txt"); !errors.Is(err, resolve.ErrRefused) {
		t.Errorf("after switching to an unsigned image: %v, want refused", err)
	}
	update(signedRack(t, rg.host, rg.host+"/racklet/os:v1", pub))
	if _, err := get(t, r, "config.txt"); err != nil {
		t.Errorf("after switching back: %v", err)
	}
}

func TestBooterReusesFreshResults(t *testing.T) {
	rg := newReg(t)
	s, v := key(t)
	d := push(t, rg, "racklet/os", "v1")
	signDigest(t, rg, "racklet/os", d, s)
	push(t, rg, "racklet/os", "v1") // same digest: a no-op
	pushDir(t, rg, variant(t, "init=/bin/sh"), "racklet/os", "unsigned")
	cfg := signedRack(t, rg.host, rg.host+"/racklet/os:v1", pubPEM(t, v))
	st, err := Open(t.TempDir(), OptionsFor(cfg))
	if err != nil {
		t.Fatal(err)
	}
	b := &Booter{Store: st, Config: func() *rack.Config { return cfg }, Fresh: time.Hour}
	ctx := context.Background()
	for _, ref := range []string{rg.host + "/racklet/os:v1", rg.host + "/racklet/os:unsigned"} {
		first, err1 := b.Boot(ctx, ref)
		rg.reset()
		second, err2 := b.Boot(ctx, ref)
		if n := rg.requests("/v2/"); n != 0 {
			t.Errorf("%s: second Boot within Fresh made %d registry requests", ref, n)
		}
		if (err1 == nil) != (err2 == nil) || (first == nil) != (second == nil) {
			t.Errorf("%s: second Boot = %v, %v; first was %v, %v", ref, second, err2, first, err1)
		}
	}
	if img, err := b.Boot(ctx, rg.host+"/racklet/os:v1"); err != nil || img.Digest != d || img.Manifest.Verity.RootHash == "" {
		t.Errorf("Boot = %+v, %v", img, err)
	}
	if _, err := b.Boot(ctx, rg.host+"/racklet/os:unsigned"); !IsRefusal(err) || !errors.Is(err, sign.ErrNoSignature) {
		t.Errorf("unsigned: %v, want a refusal wrapping sign.ErrNoSignature", err)
	}
	// A new config (new trust rules) is not answered from the old results.
	cfg2 := signedRack(t, rg.host, rg.host+"/racklet/os:v1", pubPEM(t, v))
	b.Config = func() *rack.Config { return cfg2 }
	rg.reset()
	if _, err := b.Boot(ctx, rg.host+"/racklet/os:v1"); err != nil {
		t.Fatal(err)
	}
	if rg.requests("/manifests/") == 0 {
		t.Errorf("Boot under a new config did not resolve the tag again")
	}
}
