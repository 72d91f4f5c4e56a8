// Package imagetest makes small base images for tests of the image builder: a busybox root
// file system (the host's busybox-static binary) with a fake Raspberry Pi /boot/firmware,
// packed as an OCI layout by go-containerregistry. Its two layers exercise whiteouts, an
// opaque directory, hard links, symlinks, a device node and xattrs.
package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Tag is the tag of the test image in the layout.
const Tag = "test"

// Created is the creation time of the test image.
var Created = time.Unix(1700000000, 0).UTC()

// Options shapes the test image.
type Options struct {
	// Busybox is the busybox binary to include; default /bin/busybox.
	Busybox string
	// ExtraBytes adds files of pseudo-random, half-compressible content under usr/share/bulk.
	ExtraBytes int64
	// Platforms lists the index entries; default linux/arm64 only.
	Platforms []v1.Platform
	// ExtraLayers are raw, uncompressed layer tars added on top of the two test layers,
	// for hostile content (see SparseBomb).
	ExtraLayers [][]byte
}

// Entry is one tar entry of a test layer.
type Entry struct {
	Name, Body, Link string
	Type             byte
	Mode             int64
	UID, GID         int
	Major, Minor     int64
	Xattrs           map[string]string
}

// TarLayer encodes entries as an uncompressed layer tar.
func TarLayer(es []Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Uid: e.UID, Gid: e.GID, Linkname: e.Link,
			Devmajor: e.Major, Devminor: e.Minor, ModTime: Created.Add(-time.Hour), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.Body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			} else if h.Typeflag == tar.TypeSymlink {
				h.Mode = 0o777
			}
		}
		for k, v := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(e.Body)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// KernelVersion is the version of the test image's kernel modules.
const KernelVersion = "6.6.31-v8"

// KernelEntries are a small fake module directory of KernelVersion, as depmod leaves it:
// dm-verity as a file needing dm-bufio and dm-mod, the other modules an initramfs requires
// (dm-crypt, squashfs, overlay, loop, ext4) built in, and a kernel config that unpacks zstd.
func KernelEntries() []Entry {
	d := "lib/modules/" + KernelVersion + "/"
	es := []Entry{
		{Name: d + "modules.dep", Body: "kernel/drivers/md/dm-mod.ko:\nkernel/drivers/md/dm-bufio.ko: kernel/drivers/md/dm-mod.ko\n" +
			"kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-bufio.ko kernel/drivers/md/dm-mod.ko\n"},
		{Name: d + "modules.builtin", Body: "kernel/drivers/md/dm-crypt.ko\nkernel/fs/squashfs/squashfs.ko\nkernel/fs/overlayfs/overlay.ko\n" +
			"kernel/drivers/block/loop.ko\nkernel/fs/ext4/ext4.ko\n"},
		{Name: d + "modules.alias", Body: "alias dm-verity-test dm_verity\n"},
		{Name: "boot/config-" + KernelVersion, Body: "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n"},
	}
	for _, m := range []string{"dm-mod", "dm-bufio", "dm-verity"} {
		es = append(es, Entry{Name: d + "kernel/drivers/md/" + m + ".ko", Body: "fake module " + m})
	}
	return es
}

// Capability is a valid security.capability value (v2, cap_net_raw permitted).
const Capability = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// Layers returns the entries of the two layers of the test image.
func Layers(opts Options) ([][]Entry, error) {
	bbPath := opts.Busybox
	if bbPath == "" {
		bbPath = "/bin/busybox"
	}
	bb, err := os.ReadFile(bbPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	base := []Entry{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Body: string(bb), Mode: 0o755},
		{Name: "bin/sh", Type: tar.TypeLink, Link: "bin/busybox"},
		{Name: "bin/ls", Type: tar.TypeLink, Link: "bin/busybox"},
		{Name: "usr/bin/env", Type: tar.TypeSymlink, Link: "../../bin/busybox"},
		{Name: "usr/bin/ping", Body: "ping", Mode: 0o755, Xattrs: map[string]string{"security.capability": Capability}},
		{Name: "dev/console", Type: tar.TypeChar, Major: 5, Minor: 1, Mode: 0o600},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\n"},
		{Name: "etc/old.conf", Body: "old\n"},
		{Name: "opt/app/a", Body: "a\n"},
		{Name: "opt/app/b", Body: "b\n"},
		{Name: "home/pi/", Type: tar.TypeDir, Mode: 0o700, UID: 1000, GID: 1000},
		{Name: "boot/firmware/start4.elf", Body: "start4-firmware"},
		{Name: "boot/firmware/fixup4.dat", Body: "fixup4"},
		{Name: "boot/firmware/kernel8.img", Body: "kernel-image-arm64"},
		{Name: "boot/firmware/bcm2711-rpi-4-b.dtb", Body: "dtb"},
		{Name: "boot/firmware/overlays/vc4-kms-v3d.dtbo", Body: "overlay"},
		{Name: "boot/firmware/config.txt", Body: "arm_64bit=1\nkernel=kernel8.img\n"},
	}
	base = append(base, KernelEntries()...)
	if opts.ExtraBytes > 0 {
		rnd := rand.New(rand.NewSource(42))
		const chunk = 4 << 20
		for i := int64(0); i*chunk < opts.ExtraBytes; i++ {
			n := min(int64(chunk), opts.ExtraBytes-i*chunk)
			b := make([]byte, n)
			rnd.Read(b[:n/2])
			for j := n / 2; j < n; j++ {
				b[j] = byte('a' + j%23)
			}
			base = append(base, Entry{Name: fmt.Sprintf("usr/share/bulk/%04d.bin", i), Body: string(b)})
		}
	}
	upper := []Entry{
		{Name: "etc/.wh.old.conf"},
		{Name: "opt/app/.wh..wh..opq"},
		{Name: "opt/app/c", Body: "c\n"},
		{Name: "bin/.wh.ls"},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\npi:x:1000:1000::/home/pi:/bin/sh\n"},
	}
	return [][]Entry{base, upper}, nil
}

// Image builds the test image for one platform.
func Image(opts Options, plat v1.Platform) (v1.Image, error) {
	ls, err := Layers(opts)
	if err != nil {
		return nil, err
	}
	raw := make([][]byte, 0, len(ls)+len(opts.ExtraLayers))
	for _, es := range ls {
		b, err := TarLayer(es)
		if err != nil {
			return nil, err
		}
		raw = append(raw, b)
	}
	return imageOf(plat, append(raw, opts.ExtraLayers...))
}

// imageOf makes an image of raw layer tars for one platform, created at Created.
func imageOf(plat v1.Platform, raw [][]byte) (v1.Image, error) {
	img := empty.Image
	for _, b := range raw {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Created = v1.Time{Time: Created}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.MediaType(img, types.OCIManifestSchema1), nil
}

// WriteLayoutOf writes an image of the given layers for one platform as an
// OCI layout at dir, tagged Tag, and returns the reference to build from:
// for bases other than the test image (a real kernel, an init of the test's).
func WriteLayoutOf(dir string, plat v1.Platform, layers ...[]Entry) (string, error) {
	raw := make([][]byte, 0, len(layers))
	for _, es := range layers {
		b, err := TarLayer(es)
		if err != nil {
			return "", err
		}
		raw = append(raw, b)
	}
	img, err := imageOf(plat, raw)
	if err != nil {
		return "", err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": Tag})); err != nil {
		return "", err
	}
	return "oci-layout:" + dir + ":" + Tag, nil
}

// WriteLayout writes the test image as an OCI layout at dir, tagged Tag: one image when
// opts.Platforms has one entry, else an index of them. It returns the reference to build from.
func WriteLayout(dir string, opts Options) (string, error) {
	plats := opts.Platforms
	if len(plats) == 0 {
		plats = []v1.Platform{{OS: "linux", Architecture: "arm64"}}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	ann := layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": Tag})
	if len(plats) == 1 {
		img, err := Image(opts, plats[0])
		if err != nil {
			return "", err
		}
		if err := p.AppendImage(img, ann); err != nil {
			return "", err
		}
		return "oci-layout:" + dir + ":" + Tag, nil
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, pl := range plats {
		img, err := Image(opts, pl)
		if err != nil {
			return "", err
		}
		pl := pl
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	if err := p.AppendIndex(idx, ann); err != nil {
		return "", err
	}
	return "oci-layout:" + dir + ":" + Tag, nil
}

// SparseBomb returns a layer tar of one entry, name, that claims size bytes in about 2 KiB:
// a PAX 1.0 GNU sparse file (GNU tar's --sparse --posix format) whose map puts one byte at
// its very end and holes before it. archive/tar expands the holes as zeros, so a builder
// that trusts the claimed size writes size bytes. Go's tar writer refuses sparse headers,
// so the blocks are written here by hand.
func SparseBomb(name string, size int64) []byte {
	var out bytes.Buffer
	pax := ""
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"},
		{"GNU.sparse.name", name}, {"GNU.sparse.realsize", fmt.Sprint(size)}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 1
		for len(fmt.Sprint(n))+len(rec) != n {
			n = len(fmt.Sprint(n)) + len(rec)
		}
		pax += fmt.Sprint(n) + rec
	}
	sparseMap := fmt.Sprintf("1\n%d\n1\n", size-1)
	for _, e := range []struct {
		name string
		typ  byte
		body string
	}{
		{"PaxHeaders/" + name, 'x', pax},
		{"GNUSparseFile.0/" + name, '0', pad512(sparseMap) + "!"},
	} {
		out.Write(ustarHeader(e.name, e.typ, int64(len(e.body))))
		out.WriteString(pad512(e.body))
	}
	out.Write(make([]byte, 1024)) // end of archive
	return out.Bytes()
}

func pad512(s string) string {
	if r := len(s) % 512; r != 0 {
		s += string(make([]byte, 512-r))
	}
	return s
}

// ustarHeader is one 512-byte ustar header block.
func ustarHeader(name string, typ byte, size int64) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", Created.Unix()))
	copy(h[148:156], "        ")
	h[156] = typ
	copy(h[257:265], "ustar\x0000")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}
