package resolve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
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

// TestImageBootImg checks the Pi's boot.img and boot.sig: one URL for the
// rack, the node picked by client address, each node its own image's
// files, and a node whose image is unsigned gets a 404 that says why (and
// a warning in the log) rather than anyone else's signature.
func TestImageBootImg(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.sig": "sig of A", "r": "root", "v": "verity"})
	fatA, fatB := mtoolsImage(t, "16", 16384, nil), mtoolsImage(t, "12", 2048, nil)
	imgA, _ := os.ReadFile(fatA)
	imgB, _ := os.ReadFile(fatB)
	im := &fakeImages{images: map[string]*ImageBoot{
		"reg/os:a": {FAT: fatA, BootSig: filepath.Join(dir, "a.sig"), Root: filepath.Join(dir, "r"), Verity: filepath.Join(dir, "v"), Digest: "sha256:" + strings.Repeat("a", 64)},
		"reg/os:b": {FAT: fatB, Root: filepath.Join(dir, "r"), Verity: filepath.Join(dir, "v"), Digest: "sha256:" + strings.Repeat("b", 64)},
	}}
	cfg := &rack.Config{Nodes: []rack.Node{
		{Name: "pi-a", Kind: rack.KindRPi5, Serial: "0000000a", MAC: mustMAC("d8:3a:dd:00:00:0a"), Boot: rack.Boot{Image: "reg/os:a"}},
		{Name: "pi-b", Kind: rack.KindRPi4, Serial: "0000000b", MAC: mustMAC("dc:a6:32:00:00:0b"), Boot: rack.Boot{Image: "reg/os:b"}},
	}}
	var logs strings.Builder
	r := New(inventory.New(cfg), Options{Images: im, Clients: fakeClients{
		addr("10.0.0.10"): mustMAC("d8:3a:dd:00:00:0a"),
		addr("10.0.0.11"): mustMAC("dc:a6:32:00:00:0b"),
	}, Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	tests := map[string]struct {
		req  Request
		want result
	}{
		"http boot.sig of pi-a": {Request{Client: addr("10.0.0.10"), Name: "boot.sig", Via: "http"}, result{Content: "sig of A", Node: "pi-a", Path: "boot.sig"}},
		"http boot.img of pi-a": {Request{Client: addr("10.0.0.10"), Name: "boot.img", Via: "http"}, result{Content: string(imgA), Node: "pi-a", Path: "boot.img"}},
		"http boot.img of pi-b": {Request{Client: addr("10.0.0.11"), Name: "boot.img", Via: "http"}, result{Content: string(imgB), Node: "pi-b", Path: "boot.img"}},
		"http boot.sig of pi-b": {Request{Client: addr("10.0.0.11"), Name: "boot.sig", Via: "http"}, result{Err: "not-found"}},
		"tftp serial prefix":    {Request{Client: addr("10.0.0.99"), Name: "0000000a/boot.img", Via: "tftp"}, result{Content: string(imgA), Node: "pi-a", Path: "boot.img"}},
		"tftp serial sig":       {Request{Client: addr("10.0.0.99"), Name: "0000000a/boot.sig", Via: "tftp"}, result{Content: "sig of A", Node: "pi-a", Path: "boot.sig"}},
		"unknown address":       {Request{Client: addr("10.0.0.99"), Name: "boot.img", Via: "http"}, result{Err: "refused"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := resolveResult(t, r, tc.req)
			if got != tc.want { // contents are whole FAT images: no diff of them
				t.Errorf("got %d bytes node %q path %q err %q; want %d bytes node %q path %q err %q",
					len(got.Content), got.Node, got.Path, got.Err, len(tc.want.Content), tc.want.Node, tc.want.Path, tc.want.Err)
			}
		})
	}
	_, err := r.Open(context.Background(), Request{Client: addr("10.0.0.11"), Name: "boot.sig", Via: "http"})
	if !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), "reg/os:b") {
		t.Errorf("unsigned image's boot.sig: %v, want ErrUnsigned naming the image", err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "boot.sig") || !strings.Contains(logs.String(), "node=pi-b") {
		t.Errorf("no warning for the unsigned image; log:\n%s", logs.String())
	}
}

// leaseClients knows nodes by leased address only (nodes configured by
// serial, no MAC), as the server's lease store does.
type leaseClients map[netip.Addr]string

func (c leaseClients) MACForAddr(context.Context, netip.Addr) (net.HardwareAddr, bool) {
	return nil, false
}
func (c leaseClients) NodeForAddr(_ context.Context, a netip.Addr) (string, bool) {
	n, ok := c[a]
	return n, ok
}

// TestNodeForAddr: a Pi's HTTP boot request has no serial; the node
// configured by serial alone is found through the lease DHCP made for it.
func TestNodeForAddr(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a/boot.sig": "sig a", "b/boot.sig": "sig b"})
	cfg := &rack.Config{Nodes: []rack.Node{
		{Name: "pi-a", Kind: rack.KindRPi5, Serial: "0000000a", Boot: rack.Boot{Dir: filepath.Join(dir, "a")}},
		{Name: "pi-b", Kind: rack.KindRPi4, Serial: "0000000b", Boot: rack.Boot{Dir: filepath.Join(dir, "b")}},
	}}
	r := New(inventory.New(cfg), Options{Clients: leaseClients{addr("10.0.0.10"): "pi-a", addr("10.0.0.11"): "pi-b", addr("10.0.0.12"): "gone"}})
	for req, want := range map[Request]result{
		{Client: addr("10.0.0.10"), Name: "boot.sig", Via: "http"}:        {Content: "sig a", Node: "pi-a", Path: "boot.sig"},
		{Client: addr("::ffff:10.0.0.11"), Name: "boot.sig", Via: "http"}: {Content: "sig b", Node: "pi-b", Path: "boot.sig"},
		{Client: addr("10.0.0.12"), Name: "boot.sig", Via: "http"}:        {Err: "refused"},
		{Client: addr("10.0.0.13"), Name: "boot.sig", Via: "http"}:        {Err: "refused"},
	} {
		if got := resolveResult(t, r, req); got != want {
			t.Errorf("%s from %s: %+v, want %+v", req.Name, req.Client, got, want)
		}
	}
}

// fakeSlots is a Slots over a map of node decisions.
type fakeSlots struct {
	mu   sync.Mutex
	refs map[string][2]string // node -> ref, slot
}

func (f *fakeSlots) BootImage(node string) (string, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.refs[node]
	return d[0], d[1], ok
}

func (f *fakeSlots) set(node, ref, slot string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refs[node] = [2]string{ref, slot}
}

// TestImageSlots: a boot.image node is served the image Slots names (the
// trial, then the committed one again), with the slot in {{.Slot}}; without
// a decision the configured reference is served from slot a.
func TestImageSlots(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"root1": "v1 root", "root2": "v2 root", "verity": "verity bytes"})
	fatPath := mtoolsImage(t, "16", 16384, nil)
	d1, d2 := "sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("2", 64)
	img := func(root, d string) *ImageBoot {
		return &ImageBoot{FAT: fatPath, Root: filepath.Join(dir, root), Verity: filepath.Join(dir, "verity"), Digest: d, RootHash: strings.Repeat("a", 64)}
	}
	im := &fakeImages{images: map[string]*ImageBoot{"reg/os:v2": img("root2", d2), "reg/os@" + d1: img("root1", d1), "reg/os@" + d2: img("root2", d2)}}
	cfg := imageRack("reg/os:v2")
	cfg.Nodes[0].Boot.Cmdline = "slot={{.Slot}} digest={{.ImageDigest}}"
	slots := &fakeSlots{refs: map[string][2]string{}}
	r := New(inventory.New(cfg), Options{Images: im, Slots: slots})
	check := func(step, root, cmdline string) {
		t.Helper()
		if got := resolveResult(t, r, Request{Name: "5b154510/root.squashfs", Via: "http"}); got.Content != root {
			t.Errorf("%s: root.squashfs %q, want %q", step, got.Content, root)
		}
		if got := resolveResult(t, r, Request{Name: "5b154510/cmdline.txt", Via: "tftp"}); got.Content != cmdline+"\n" {
			t.Errorf("%s: cmdline.txt %q, want %q", step, got.Content, cmdline)
		}
	}
	check("no decision", "v2 root", "slot=a digest="+d2)
	slots.set("pi-img", "reg/os@"+d1, "a")
	check("committed v1", "v1 root", "slot=a digest="+d1)
	slots.set("pi-img", "reg/os@"+d2, "b")
	check("trial v2", "v2 root", "slot=b digest="+d2)
	slots.set("pi-img", "reg/os@"+d1, "a")
	check("rolled back", "v1 root", "slot=a digest="+d1)
}

// TestImageIPXECmdline: a generic node booting an image without a
// boot.cmdline of its own gets the image's command line in its iPXE script.
func TestImageIPXECmdline(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"root": "root", "verity": "verity"})
	im := &fakeImages{images: map[string]*ImageBoot{"reg/os:v1": {FAT: mtoolsImage(t, "16", 16384, nil), Root: filepath.Join(dir, "root"),
		Verity: filepath.Join(dir, "verity"), Digest: "sha256:" + strings.Repeat("d", 64), Cmdline: "console=ttyS0 racklet.roothash=ab"}}}
	cfg := &rack.Config{Nodes: []rack.Node{{Name: "pc-img", Kind: rack.KindBIOS, MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1},
		Boot: rack.Boot{Image: "reg/os:v1", Kernel: "vmlinuz", Initrd: []string{"initramfs"}}}}}
	r := New(inventory.New(cfg), Options{Images: im})
	got := resolveResult(t, r, Request{Name: "52-54-00-00-00-01/boot.ipxe", Via: "http"})
	if !strings.Contains(got.Content, "vmlinuz initrd=initramfs console=ttyS0 racklet.roothash=ab\n") {
		t.Errorf("boot.ipxe does not carry the image's command line:\n%s", got.Content)
	}
}
