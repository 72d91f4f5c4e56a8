package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/racklet/racklet-boot/imagestore"
	"github.com/racklet/racklet-boot/inventory"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/rack"
)

// expectedBoot computes what a node should have measured from what
// racklet-boot would serve it right now: the kernel, initramfs and
// cmdline.txt it resolves for the node (through the same resolver TFTP and
// HTTP use, so a template or a FAT source counts exactly as served) and the
// root hash of its boot source.
type expectedBoot struct {
	inv    *inventory.Live
	res    resolve.Opener
	images *imagestore.Booter // the verified image of nodes booting one
	slots  resolve.Slots      // which image (package ab): the one being served

	mu     sync.Mutex
	hashes map[string]string // path + ETag -> sha256 hex
}

var _ verifier.Expected = (*expectedBoot)(nil)

// Expected implements verifier.Expected.
func (e *expectedBoot) Expected(ctx context.Context, node string) (attest.Measurements, error) {
	n, ok := e.inv.Load().ByName(node)
	if !ok {
		return attest.Measurements{}, fmt.Errorf("node %q: %w", node, verifier.ErrUnknownNode)
	}
	prefix := inventory.Prefix(n) + "/"
	kernel, initrd := n.Boot.Kernel, ""
	if len(n.Boot.Initrd) > 0 {
		initrd = n.Boot.Initrd[0]
	}
	if n.Kind.IsPi() && (kernel == "" || initrd == "") {
		ct, err := e.read(ctx, prefix+"config.txt")
		if err != nil {
			return attest.Measurements{}, fmt.Errorf("node %s: read config.txt to find its kernel: %w", node, err)
		}
		k, i := piBootFiles(ct, n.Kind)
		if kernel == "" {
			kernel = k
		}
		if initrd == "" {
			initrd = i
		}
	}
	if !n.Kind.IsPi() {
		// As the resolver boots a generic client (resolve.DefaultKernel).
		if kernel == "" {
			kernel = resolve.DefaultKernel
		}
		if initrd == "" {
			initrd = resolve.DefaultInitrd
		}
	}
	if kernel == "" || initrd == "" {
		return attest.Measurements{}, fmt.Errorf("node %s: no kernel and initramfs to expect: set boot.kernel and boot.initrd", node)
	}
	m := attest.Measurements{RootHash: n.Boot.RootHash, Image: bootLabel(n.Boot)}
	if n.Boot.Image != "" {
		// The image served now, as package ab decides (the trial or the
		// committed one): the same the resolver serves the node's files from.
		ref := n.Boot.Image
		if e.slots != nil {
			if r, _, ok := e.slots.BootImage(node); ok {
				ref = r
			}
		}
		img, err := e.images.Boot(ctx, ref)
		if err != nil {
			return attest.Measurements{}, fmt.Errorf("node %s: its image: %w", node, err)
		}
		m.RootHash, m.Image = img.Manifest.Verity.RootHash, ref
		if !strings.Contains(ref, "@") {
			m.Image += "@" + img.Digest.String()
		}
	}
	var err error
	if m.Kernel, err = e.digest(ctx, prefix+kernel); err != nil {
		return attest.Measurements{}, fmt.Errorf("node %s: kernel: %w", node, err)
	}
	if m.Initramfs, err = e.digest(ctx, prefix+initrd); err != nil {
		return attest.Measurements{}, fmt.Errorf("node %s: initramfs: %w", node, err)
	}
	cl, err := e.read(ctx, prefix+"cmdline.txt")
	if err != nil {
		return attest.Measurements{}, fmt.Errorf("node %s: cmdline.txt: %w", node, err)
	}
	m.Cmdline = attest.NormalizeCmdline(string(cl))
	return m, nil
}

// digest hashes a served file, once per ETag.
func (e *expectedBoot) digest(ctx context.Context, name string) (string, error) {
	f, err := e.res.Open(ctx, resolve.Request{Name: name, Via: "attest"})
	if err != nil {
		return "", err
	}
	defer f.Close()
	key := name + "\x00" + f.ETag
	e.mu.Lock()
	h, ok := e.hashes[key]
	e.mu.Unlock()
	if ok {
		return h, nil
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, f.Content); err != nil {
		return "", fmt.Errorf("hash %s: %w", name, err)
	}
	h = hex.EncodeToString(sum.Sum(nil))
	e.mu.Lock()
	if e.hashes == nil || len(e.hashes) > 4096 {
		e.hashes = map[string]string{}
	}
	e.hashes[key] = h
	e.mu.Unlock()
	return h, nil
}

// read returns a small served file's bytes (at most 1 MiB).
func (e *expectedBoot) read(ctx context.Context, name string) ([]byte, error) {
	f, err := e.res.Open(ctx, resolve.Request{Name: name, Via: "attest"})
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f.Content, 1<<20))
}

func bootLabel(b rack.Boot) string {
	switch {
	case b.Image != "":
		return b.Image
	case b.FAT != "":
		return b.FAT
	}
	return b.Dir
}

// piBootFiles reads the kernel and initramfs names a Pi's config.txt loads
// (`kernel=`, `initramfs NAME`), in the [all] and model sections, with the
// firmware's 64-bit defaults.
func piBootFiles(configTxt []byte, kind rack.NodeKind) (kernel, initrd string) {
	model := "[pi4]"
	kernel = "kernel8.img"
	if kind == rack.KindRPi5 {
		model, kernel = "[pi5]", "kernel_2712.img"
	}
	applies := true
	sc := bufio.NewScanner(bytes.NewReader(configTxt))
	// A line as long as the file is still one line: the default 64 KiB token
	// limit would end the scan there and drop the lines after it.
	sc.Buffer(nil, len(configTxt)+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case strings.HasPrefix(line, "["):
			applies = line == "[all]" || line == model
		case !applies || line == "":
		case strings.HasPrefix(line, "kernel="):
			kernel = strings.TrimSpace(strings.TrimPrefix(line, "kernel="))
		case strings.HasPrefix(line, "initramfs "):
			if f := strings.Fields(line); len(f) >= 2 {
				initrd = f[1]
			}
		}
	}
	return kernel, initrd
}
