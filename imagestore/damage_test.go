package imagestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/imagetest"
	"github.com/racklet/racklet-boot/internal/ociref"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/inventory"
	"github.com/racklet/racklet-boot/rack"
)

// builtWithInitramfs builds the test image with a 64 KiB kernel and a
// 192 KiB initramfs of random bytes in its boot partition.
func builtWithInitramfs(t *testing.T) (dir string, kernel, initrd []byte) {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		testutil.Unavailable(t, "no /bin/busybox (Debian package busybox-static): "+err.Error())
	}
	tmp := t.TempDir()
	ref, err := imagetest.WriteLayout(filepath.Join(tmp, "base"), imagetest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	kernel, initrd = make([]byte, 64<<10), make([]byte, 192<<10)
	for _, b := range [][]byte{kernel, initrd} {
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
	}
	fw := filepath.Join(tmp, "overlay", "boot", "firmware")
	if err := os.MkdirAll(fw, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"kernel8.img": kernel, "initrd.img": initrd} {
		if err := os.WriteFile(filepath.Join(fw, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	agent, err := imagetest.FakeAgent(tmp, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(tmp, "out")
	spec := image.Spec{Base: ref, Overlay: filepath.Join(tmp, "overlay"), Agent: agent,
		ConfigTxt: "arm_64bit=1\nkernel=kernel8.img\ninitramfs initrd.img followkernel\n"}
	if _, err := image.Build(context.Background(), spec, dir, image.Options{TempDir: tmp}); err != nil {
		t.Fatal(err)
	}
	return dir, kernel, initrd
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDamagedBlobNeverServed flips one byte at a random place of a cached
// blob, many times for each kind of blob: the kernel and the initramfs
// inside the boot partition, the rest of the boot partition, the root
// squashfs, its verity tree, the image manifest and the OCI manifest. The
// Booter reuses its verified result (Fresh is an hour), as serve does
// between tag resolutions. Every flip must be caught before the next file is
// served: the resolver hands out the signed bytes, the attestation values
// (root hash, command line) stay the signed ones, and the blob is fetched
// again from the registry.
func TestDamagedBlobNeverServed(t *testing.T) {
	start := time.Now()
	dir, kernel, initrd := builtWithInitramfs(t)
	t.Logf("test image built in %s", time.Since(start).Round(time.Millisecond))
	rg := newReg(t)
	d := pushDir(t, rg, dir, "racklet/os", "v1")
	s, v := key(t)
	signDigest(t, rg, "racklet/os", d, s)
	ref := rg.host + "/racklet/os:v1"
	cfg := signedRack(t, rg.host, ref, pubPEM(t, v))
	st, err := Open(t.TempDir(), OptionsFor(cfg))
	if err != nil {
		t.Fatal(err)
	}
	var cur atomic.Pointer[rack.Config]
	cur.Store(cfg)
	b := &Booter{Store: st, Config: cur.Load, Fresh: time.Hour}
	r := resolve.New(inventory.New(cfg), resolve.Options{Images: booterImages{b}})
	ctx := context.Background()
	ib, err := b.Boot(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	img := ib
	vfat, err := os.ReadFile(img.Boot)
	if err != nil {
		t.Fatal(err)
	}
	kOff, iOff := bytes.Index(vfat, kernel), bytes.Index(vfat, initrd)
	if kOff < 0 || iOff < 0 {
		t.Fatalf("kernel (%d) or initramfs (%d) not stored contiguously in boot.vfat", kOff, iOff)
	}
	type region struct{ from, to int }
	targets := []struct {
		what, path, serve string // serve: the resolver name to read back, "" for the manifests
		in                []region
	}{
		{"kernel", img.Boot, "kernel8.img", []region{{kOff, kOff + len(kernel)}}},
		{"initramfs", img.Boot, "initrd.img", []region{{iOff, iOff + len(initrd)}}},
		{"boot partition", img.Boot, "config.txt", []region{{0, min(kOff, iOff)}}},
		{"root", img.Root, resolve.ImageRootName, nil},
		{"verity", img.Verity, resolve.ImageVerityName, nil},
		{"image manifest", img.blobs[1].Digest.Hex, "", nil},
		{"OCI manifest", img.blobs[0].Digest.Hex, "", nil},
	}
	want := map[string]string{}
	for _, tg := range targets {
		if tg.serve != "" {
			got, err := get(t, r, tg.serve)
			if err != nil {
				t.Fatal(err)
			}
			want[tg.serve] = sum(got)
		}
	}
	const flips = 10
	rnd := rand.New(rand.NewPCG(3, 4))
	caught := 0
	for _, tg := range targets {
		path := tg.path
		if filepath.Base(path) == path {
			path = st.BlobPath(v1.Hash{Algorithm: "sha256", Hex: path})
		}
		for i := range flips {
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			reg := region{0, len(orig)}
			if tg.in != nil {
				reg = tg.in[0]
			}
			off := reg.from + rnd.IntN(reg.to-reg.from)
			flipByte(t, path, off, byte(1+rnd.IntN(255)))
			rg.reset()
			if tg.serve != "" {
				got, err := get(t, r, tg.serve)
				if err != nil || sum(got) != want[tg.serve] {
					t.Fatalf("%s flip %d at %d: %s served as %d bytes %s, %v; want the signed bytes", tg.what, i, off, tg.serve, len(got), sum(got), err)
				}
			} else {
				again, err := b.Boot(ctx, ref)
				if err != nil || again.Manifest.Verity.RootHash != ib.Manifest.Verity.RootHash || again.Manifest.Cmdline != ib.Manifest.Cmdline || again.Digest != ib.Digest {
					t.Fatalf("%s flip %d at %d: Boot = %+v, %v; want the signed image %+v", tg.what, i, off, again, err, ib)
				}
			}
			if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, orig) {
				t.Fatalf("%s flip %d at %d: the damaged blob was not replaced by the signed one (%v)", tg.what, i, off, err)
			}
			if rg.requests("/blobs/")+rg.requests("/manifests/") > 0 {
				caught++
			}
		}
	}
	t.Logf("1-byte flips caught and fetched again: %d of %d (%s)", caught, flips*len(targets), time.Since(start).Round(time.Millisecond))
	if caught != flips*len(targets) {
		t.Errorf("%d of %d flips caught", caught, flips*len(targets))
	}
}

// flipByte XORs one byte of a (read-only) blob in place, as a disk fault or
// a stray write would.
func flipByte(t *testing.T, path string, off int, x byte) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], int64(off)); err != nil {
		t.Fatal(err)
	}
	b[0] ^= x
	if _, err := f.WriteAt(b[:], int64(off)); err != nil {
		t.Fatal(err)
	}
}

// TestRestartRehashes: a blob damaged while the server was down is caught
// by the next process's first load (it has never hashed the file) and
// fetched again, not kept because its size is right.
func TestRestartRehashes(t *testing.T) {
	rg := newReg(t)
	d := push(t, rg, "racklet/os", "v1")
	s, v := key(t)
	signDigest(t, rg, "racklet/os", d, s)
	ref := rg.host + "/racklet/os:v1"
	dir := t.TempDir()
	ctx := context.Background()
	st, err := Open(dir, Options{Registry: ociref.Options{InsecureHosts: []string{rg.host}}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := st.Ensure(ctx, ref, []v1Verifier{v})
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(img.Root)
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, img.Root, len(want)/2, 0x40)
	st2, err := Open(dir, Options{Registry: ociref.Options{InsecureHosts: []string{rg.host}}})
	if err != nil {
		t.Fatal(err)
	}
	rg.reset()
	img2, err := st2.Ensure(ctx, ref, []v1Verifier{v})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(img2.Root)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("after a restart the damaged root blob is still stored (%v)", err)
	}
	if rg.requests("/blobs/"+img.blobs[3].Digest.String()) == 0 {
		t.Error("the damaged root blob was not fetched again")
	}
	// A damaged blob that cannot be fetched again fails the image: it is
	// not served.
	flipByte(t, img.Root, len(want)/3, 0x01)
	rg.tamper = func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/"+img.blobs[3].Digest.String()) {
			http.Error(w, "gone", http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	st3, err := Open(dir, Options{Registry: ociref.Options{InsecureHosts: []string{rg.host}}})
	if err != nil {
		t.Fatal(err)
	}
	if img3, err := st3.Ensure(ctx, ref, []v1Verifier{v}); err == nil {
		t.Errorf("Ensure = %s with a damaged blob and no registry to fetch it from, want an error", img3.Root)
	}
	if _, err := os.Stat(img.Root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged blob is still in the store: %v", err)
	}
}

// BenchmarkBlobCheck prices the re-hashing: "unchanged" is what every
// Booter.Boot pays per blob of an image already hashed (one stat); "first"
// is the full hash of a 64 MiB blob on its first load or after it changed.
func BenchmarkBlobCheck(b *testing.B) {
	st, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64<<20)
	rnd := rand.NewChaCha8([32]byte{5, 6})
	rnd.Read(data)
	h := sha256.Sum256(data)
	desc := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h[:])}, Size: int64(len(data))}
	ctx := context.Background()
	if err := st.writeBlob(ctx, bytesOrigin{d: desc.Digest, b: data}, desc); err != nil {
		b.Fatal(err)
	}
	b.Run("unchanged", func(b *testing.B) {
		for b.Loop() {
			if err := st.checkBlob(ctx, desc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("first", func(b *testing.B) {
		b.SetBytes(desc.Size)
		for b.Loop() {
			st.forget(desc.Digest)
			if err := st.checkBlob(ctx, desc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// booterImages hands a Booter's images to a resolver (boot/server does the
// same for the running server; it cannot be imported from here).
type booterImages struct{ b *Booter }

func (s booterImages) Boot(ctx context.Context, ref string) (*resolve.ImageBoot, error) {
	img, err := s.b.Boot(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &resolve.ImageBoot{FAT: img.Boot, Root: img.Root, Verity: img.Verity, BootSig: img.BootSig,
		Digest: img.Digest.String(), RootHash: img.Manifest.Verity.RootHash, Cmdline: img.Manifest.Cmdline}, nil
}
