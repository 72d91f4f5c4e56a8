package resolve

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/racklet/racklet-boot/inventory"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/rack"
)

// fakeImages serves images from a map; a missing reference is refused.
type fakeImages struct {
	mu     sync.Mutex
	images map[string]*ImageBoot
	errs   map[string]error
	calls  int
}

func (f *fakeImages) Boot(_ context.Context, ref string) (*ImageBoot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if err := f.errs[ref]; err != nil {
		return nil, err
	}
	if ib, ok := f.images[ref]; ok {
		return ib, nil
	}
	return nil, fmt.Errorf("%w: image %s is not signed by a trusted key", ErrRefused, ref)
}

func imageRack(ref string) *rack.Config {
	return &rack.Config{Nodes: []rack.Node{{Name: "pi-img", Kind: rack.KindRPi4, Serial: "5b154510",
		Boot: rack.Boot{Image: ref, Cmdline: "root=/dev/nbd0 digest={{.ImageDigest}} roothash={{.RootHash}}"}}}}
}

func TestImageSource(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"root": "squashfs bytes", "verity": "verity bytes"})
	im := &fakeImages{
		images: map[string]*ImageBoot{"reg/os:v1": {
			FAT: mtoolsImage(t, "16", 16384, nil), Root: filepath.Join(dir, "root"), Verity: filepath.Join(dir, "verity"),
			Digest: "sha256:" + strings.Repeat("d", 64), RootHash: strings.Repeat("a", 64),
		}},
		errs: map[string]error{"reg/os:down": errors.New("dial tcp: connection refused")},
	}
	r := New(inventory.New(imageRack("reg/os:v1")), Options{Images: im})
	tests := map[string]result{
		"start4.elf":    {Content: "start4 from FAT", Node: "pi-img", Path: "start4.elf"},
		"config.txt":    {Content: "# pi-img from FAT\n", Node: "pi-img", Path: "config.txt"},
		"root.squashfs": {Content: "squashfs bytes", Node: "pi-img", Path: "root.squashfs"},
		"root.verity":   {Content: "verity bytes", Node: "pi-img", Path: "root.verity"},
		"cmdline.txt": {Content: "root=/dev/nbd0 digest=sha256:" + strings.Repeat("d", 64) + " roothash=" + strings.Repeat("a", 64) + "\n",
			Node: "pi-img", Path: "cmdline.txt"},
		"nothere.bin": {Err: "not-found"},
	}
	for name, want := range tests {
		got := resolveResult(t, r, Request{Name: "5b154510/" + name, Via: "tftp"})
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
	f, err := r.Open(context.Background(), Request{Name: "5b154510/root.squashfs", Via: "http"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f.ETag != "\"sha256:root\"" {
		t.Errorf("root.squashfs ETag %s, want the blob's name", f.ETag)
	}

	// The config now names an image that is refused: no file at all.
	r.Update(inventory.New(imageRack("reg/os:unsigned")))
	for _, name := range []string{"start4.elf", "config.txt", "cmdline.txt", "root.squashfs", "boot.ipxe"} {
		_, err := r.Open(context.Background(), Request{Name: "5b154510/" + name, Via: "tftp"})
		if errKind(err) != "refused" || !strings.Contains(err.Error(), "not signed by a trusted key") {
			t.Errorf("%s from a refused image: %v, want refused with the reason", name, err)
		}
	}
	// A registry that cannot be reached is a server-side problem, not a refusal.
	r.Update(inventory.New(imageRack("reg/os:down")))
	if _, err := r.Open(context.Background(), Request{Name: "5b154510/start4.elf", Via: "tftp"}); errKind(err) != "unavailable" {
		t.Errorf("unreachable image: %v, want unavailable", err)
	}
	// Back to the good image: served again.
	r.Update(inventory.New(imageRack("reg/os:v1")))
	if got := resolveResult(t, r, Request{Name: "5b154510/start4.elf", Via: "tftp"}); got.Content != "start4 from FAT" {
		t.Errorf("after switching back: %+v", got)
	}
}

func TestImageSourceWithoutImages(t *testing.T) {
	r := New(inventory.New(imageRack("reg/os:v1")), Options{})
	if _, err := r.Open(context.Background(), Request{Name: "5b154510/start4.elf", Via: "tftp"}); errKind(err) != "image" {
		t.Errorf("no Images configured: %v, want ErrImageSource", err)
	}
}

func TestImageFATSwapDropsOld(t *testing.T) {
	var m imageFATs
	for _, step := range []struct{ ref, path, drop string }{
		{"a", "/1", ""}, {"b", "/1", ""}, {"a", "/2", ""}, {"b", "/3", "/1"}, {"b", "/3", ""},
	} {
		if got := m.swap(step.ref, step.path); got != step.drop {
			t.Errorf("swap(%s, %s) = %q, want %q", step.ref, step.path, got, step.drop)
		}
	}
}
