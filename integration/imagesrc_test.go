package integration

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/sigstore/sigstore/pkg/signature"

	bhttp "github.com/racklet/racklet-boot/boot/http"
	"github.com/racklet/racklet-boot/boot/resolve"
	bootserver "github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/boot/tftp"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/imagestore"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/sign"
)

// TestImageSourceFromRealRegistry builds a real image, pushes it to Debian's
// docker-registry, signs it, and serves its boot.vfat through the resolver
// and the TFTP server to tftp-hpa; an unsigned image pushed beside it is
// refused with a TFTP error and no file.
func TestImageSourceFromRealRegistry(t *testing.T) {
	need(t, "docker-registry", "tftp", "curl", "/bin/busybox")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	reg := imagetest.StartRegistry(t)

	base, err := imagetest.WriteLayout(filepath.Join(t.TempDir(), "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := image.Build(ctx, image.Spec{Base: base}, out, image.Options{}); err != nil {
		t.Fatal(err)
	}
	d, err := artifact.Push(ctx, out, reg+"/racklet/os:v1", artifact.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	unsignedOut := filepath.Join(t.TempDir(), "unsigned")
	if _, err := image.Build(ctx, image.Spec{Base: base, Cmdline: "console=ttyAMA0 init=/bin/sh"}, unsignedOut, image.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := artifact.Push(ctx, unsignedOut, reg+"/racklet/os:unsigned", artifact.Options{Insecure: true}); err != nil {
		t.Fatal(err)
	}
	priv, err := sign.GenerateKey(sign.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		t.Fatal(err)
	}
	dref, err := name.NewDigest(reg+"/racklet/os@"+d.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.Sign(ctx, dref, signer); err != nil {
		t.Fatal(err)
	}
	pub, err := sign.MarshalPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFile(t, dir, "cosign.pub", string(pub))
	cfgFor := func(tag string) *rack.Config {
		p := writeFile(t, dir, "rack.yaml", `apiVersion: racklet.io/v1alpha1
kind: Rack
server: {address: 127.0.0.1, dataDir: state}
dhcp: {mode: off}
trust:
  - repositories: ["`+reg+`/racklet/*"]
    keys: [{file: cosign.pub}]
images: {insecure: ["`+reg+`"]}
nodes:
  - {name: pi-01, kind: rpi4, serial: 5b154510, boot: {image: "`+reg+`/racklet/os:`+tag+`"}}
`)
		cfg, err := rack.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := cfgFor("v1")
	st, err := imagestore.Open(imagestore.Dir(cfg), imagestore.OptionsFor(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[rack.Config]
	cur.Store(cfg)
	res := resolve.New(inventory.New(cfg), resolve.Options{Images: bootserver.ImageSource(&imagestore.Booter{Store: st, Config: cur.Load})})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- (&tftp.Server{Files: res}).Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		<-srvDone
	})
	port := strconv.Itoa(conn.LocalAddr().(*net.UDPAddr).Port)
	fetch := func(file string) (string, error) {
		dst := filepath.Join(t.TempDir(), filepath.Base(file))
		out, err := runTool(t, "tftp", "-m", "binary", "127.0.0.1", port, "-c", "get", "5b154510/"+file, dst)
		b, rerr := os.ReadFile(dst)
		if err != nil || rerr != nil || strings.Contains(out, "Error") {
			return out, errors.Join(err, rerr, errors.New(strings.TrimSpace(out)))
		}
		return string(b), nil
	}

	got, err := fetch("config.txt")
	if err != nil || !strings.Contains(got, "arm_64bit=1") {
		t.Fatalf("config.txt over TFTP from the signed image: %q, %v", got, err)
	}
	got, err = fetch("kernel8.img")
	if err != nil || got != "kernel-image-arm64" {
		t.Errorf("kernel8.img over TFTP from the signed image: %q, %v", got, err)
	}
	want, _ := os.ReadFile(filepath.Join(out, image.VerityFile))
	got, err = fetch("root.verity")
	if err != nil || len(want) == 0 || got != string(want) {
		t.Errorf("root.verity over TFTP: %d bytes, %v; want %d", len(got), err, len(want))
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "images", "blobs", "sha256", d.Hex)); err != nil {
		t.Errorf("manifest not in the store under dataDir: %v", err)
	}

	// HTTP: a byte range of the root filesystem through the boot HTTP server, with curl.
	web := httptest.NewServer((&bhttp.Server{Files: res}).Handler())
	defer web.Close()
	root, _ := os.ReadFile(filepath.Join(out, image.RootFile))
	rangeOut := filepath.Join(t.TempDir(), "range")
	code := mustTool(t, "curl", "-sS", "-r", "4096-8191", "-o", rangeOut, "-w", "%{http_code}", web.URL+"/boot/5b154510/root.squashfs")
	if b, _ := os.ReadFile(rangeOut); code != "206" || len(root) < 8192 || string(b) != string(root[4096:8192]) {
		t.Errorf("curl -r 4096-8191 root.squashfs: status %s, %d bytes; want 206 and the image's bytes", code, len(b))
	}

	// The config now names the unsigned image: the node gets nothing.
	cfg = cfgFor("unsigned")
	cur.Store(cfg)
	res.Update(inventory.New(cfg))
	for _, f := range []string{"config.txt", "kernel8.img", "root.squashfs"} {
		got, err := fetch(f)
		if err == nil || !strings.Contains(err.Error(), "Access violation") && !strings.Contains(err.Error(), "Error code 2") {
			t.Errorf("%s from the unsigned image: %q, %v; want a TFTP access violation", f, got, err)
		}
		t.Logf("%s refused: %v", f, err)
	}
	code = mustTool(t, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", web.URL+"/boot/5b154510/config.txt")
	if code != "403" {
		t.Errorf("curl config.txt from the unsigned image: status %s, want 403", code)
	}
}
