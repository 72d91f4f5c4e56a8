package image

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/racklet/racklet-boot/image/flatten"
	"github.com/racklet/racklet-boot/image/source"
	"github.com/racklet/racklet-boot/kube/kubebin"
	"github.com/racklet/racklet-boot/kube/profile"
	"github.com/racklet/racklet-boot/sign"
)

// Progress is told about each stage of a build: its name and, for stages that move bytes,
// how many are done of how many (total -1 when unknown, 0 when the stage just started).
type Progress func(stage string, done, total int64)

// Options tunes Build.
type Options struct {
	// Logger gets one line per stage; nil discards.
	Logger *slog.Logger
	// Progress, when set, is told about stages and bytes.
	Progress Progress
	// TempDir holds the spilled root file system; default os.TempDir().
	TempDir string
	// Source tunes how the base image is fetched (keychain, transport).
	Source source.Options
	// NoCache rebuilds even when the output directory already holds a build of the same
	// input digest.
	NoCache bool
	// BootKey, when set, signs boot.vfat as the Raspberry Pi's boot.img: boot.sig is
	// written beside it (rpi-eeprom-digest's format, ts = the build time) and pinned in
	// the manifest. It must be an RSA-2048 key; boot.vfat must then be at most
	// MaxBootImg bytes.
	BootKey crypto.Signer
	// MaxFileSize, MaxRootSize and MaxEntries bound what flattening the base image may
	// produce: one regular file, all regular files of all layers together, and the number
	// of tar entries. A base past a limit fails with flatten.ErrTooLarge before the
	// offending entry is written (a sparse or compressed layer can claim terabytes in a
	// few bytes). 0 means DefaultMaxFileSize, DefaultMaxRootSize, DefaultMaxEntries; -1
	// means no limit.
	MaxFileSize, MaxRootSize int64
	MaxEntries               int
	// Kubernetes says where kubelet and kubeadm of a spec with a kubernetes
	// profile come from (the helper module, the cache, the go command);
	// Version, Arch and Commands are the spec's. Default: kubebin's defaults.
	Kubernetes kubebin.Options
}

// Default flattening limits: far above a Raspberry Pi OS root (a Debian 12 arm64 base with
// a kernel is ~0.6 GiB in ~25,000 entries), far below what fills a build machine.
const (
	DefaultMaxFileSize = 4 << 30
	DefaultMaxRootSize = 16 << 30
	DefaultMaxEntries  = 1 << 20
)

// limit returns v, its default when 0, or no limit (0) when negative.
func limit[T int | int64](v, def T) T {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Build runs the pipeline of spec and writes the output directory out. It builds into a
// sibling temporary directory and renames it over out at the end, so a failed build leaves
// any previous out untouched. When out already holds a build of the same input digest whose
// files are all there with their sizes, that build is returned unchanged (the cache by
// digest; push and pull still verify every digest).
func Build(ctx context.Context, spec Spec, out string, opts Options) (*Manifest, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	prog := opts.Progress
	if prog == nil {
		prog = func(string, int64, int64) {}
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	plat, err := v1.ParsePlatform(spec.Platform)
	if err != nil {
		return nil, fmt.Errorf("%w: platform: %w", ErrSpec, err)
	}
	agent, err := agentFor(spec, plat.Architecture)
	if err != nil {
		return nil, err
	}
	_, agentDigest, err := hashFile(agent)
	if err != nil {
		return nil, fmt.Errorf("read racklet-agent: %w", err)
	}
	kfiles, kdigest, err := kubeFiles(ctx, spec, plat.Architecture, opts, log)
	if err != nil {
		return nil, err
	}
	sopts := opts.Source
	sopts.Platform, sopts.Insecure = plat, spec.Insecure
	prog("resolve base", 0, 0)
	img, err := source.Open(ctx, spec.Base, sopts)
	if err != nil {
		return nil, err
	}
	input, err := inputDigest(img.ManifestDigest.String(), spec, agentDigest, kdigest)
	if err != nil {
		return nil, err
	}
	log.Info("base resolved", "ref", spec.Base, "digest", img.ManifestDigest.String(), "input", input)
	if !opts.NoCache {
		if m, err := ReadManifest(out); err == nil && m.InputDigest == input && m.CheckSizes(out) == nil && sameBootKey(m, opts.BootKey) {
			log.Info("output is up to date", "dir", out, "input", input)
			return m, nil
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read base image config: %w", err)
	}
	epoch, err := buildEpoch(cf.Created.Time)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}

	tree, err := flattenImage(ctx, img, spec, agent, kfiles, opts, epoch, log, prog)
	if err != nil {
		return nil, err
	}
	defer tree.Close()
	kver := kernelVersion(tree)
	prog("write initramfs", 0, 0)
	initrd, ires, err := buildInitramfs(ctx, tree, spec, agent, plat.Architecture, kver, epoch, log)
	if err != nil {
		return nil, err
	}

	parent := filepath.Dir(filepath.Clean(out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("make output directory: %w", err)
	}
	work, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("make output directory: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(work)
		}
	}()
	m := &Manifest{
		APIVersion: APIVersion, Created: time.Unix(epoch, 0).UTC(), InputDigest: input, Spec: spec,
		Base:          Base{Ref: spec.Base, Digest: img.ManifestDigest.String(), Platform: spec.Platform},
		KernelVersion: kver,
	}
	m.Boot.Initramfs = &InitramfsInfo{Compression: string(ires.Compression), Agent: agentDigest, Modules: ires.Modules}
	if err := writeRoot(ctx, tree, spec, work, m, epoch, log, prog); err != nil {
		return nil, err
	}
	if err := writeBoot(ctx, tree, spec, work, m, initrd, epoch, log, prog); err != nil {
		return nil, err
	}
	if opts.BootKey != nil {
		if err := writeBootSig(work, m, opts.BootKey, epoch, log, prog); err != nil {
			return nil, err
		}
	}
	if spec.Disk {
		if err := writeDisk(ctx, spec, work, m, epoch, log, prog); err != nil {
			return nil, err
		}
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode image manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(work, ManifestFile), append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write image manifest: %w", err)
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, fmt.Errorf("replace output directory %s: %w", out, err)
	}
	if err := os.Rename(work, out); err != nil {
		return nil, fmt.Errorf("move build into %s: %w", out, err)
	}
	done = true
	log.Info("image built", "dir", out, "root_hash", m.Verity.RootHash)
	return m, nil
}

// sameBootKey reports whether a cached build was signed as the caller asks: by key's
// public key, or not at all when key is nil.
func sameBootKey(m *Manifest, key crypto.Signer) bool {
	if key == nil || m.BootSig == nil {
		return key == nil && m.BootSig == nil
	}
	id, err := sign.KeyID(key.Public())
	return err == nil && id == m.BootSig.KeyID
}

// flattenImage applies the layers of img, racklet-agent with its health unit, the
// Kubernetes profile's files (kfiles, checked against the base first) and the overlay
// into a tree.
func flattenImage(ctx context.Context, img *source.Image, spec Spec, agent string, kfiles []profile.File, opts Options, epoch int64, log *slog.Logger, prog Progress) (*flatten.Tree, error) {
	layers, err := source.Layers(img)
	if err != nil {
		return nil, err
	}
	b, err := flatten.NewBuilder(flatten.Options{TempDir: opts.TempDir, Epoch: epoch,
		MaxFileSize:  limit(opts.MaxFileSize, DefaultMaxFileSize),
		MaxTotalSize: limit(opts.MaxRootSize, DefaultMaxRootSize),
		MaxEntries:   limit(opts.MaxEntries, DefaultMaxEntries)})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.Tree().Close()
		}
	}()
	for i, l := range layers {
		prog("flatten layers", int64(i), int64(len(layers)))
		rc, err := l.Open()
		if err != nil {
			return nil, err
		}
		err = b.ApplyLayer(ctx, rc, l.Index)
		if err != nil {
			// A layer that fails to parse may be a corrupt one: read it to its end so the
			// digest check names the real cause.
			if _, derr := io.Copy(io.Discard, rc); errors.Is(derr, source.ErrCorrupt) {
				err = derr
			}
		}
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("flatten base image: %w", err)
		}
		log.Info("layer applied", "layer", l.Index, "diff_id", l.DiffID().String())
	}
	prog("flatten layers", int64(len(layers)), int64(len(layers)))
	if err := addAgent(b, agent); err != nil {
		return nil, err
	}
	if kfiles != nil {
		prog("kubernetes profile", 0, 0)
		if err := addKubernetes(b, kfiles); err != nil {
			return nil, err
		}
		log.Info("kubernetes profile applied", "version", spec.Kubernetes.Version, "files", len(kfiles))
	}
	if spec.Overlay != "" {
		if err := b.AddOverlay(ctx, spec.Overlay); err != nil {
			return nil, err
		}
		log.Info("overlay applied", "dir", spec.Overlay)
	}
	ok = true
	return b.Tree(), nil
}

// Describe is a short human summary of a manifest, for logs and `inspect`.
func (m *Manifest) Describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "base:      %s (%s, %s)\n", m.Base.Ref, m.Base.Digest, m.Base.Platform)
	fmt.Fprintf(&b, "created:   %s\ninput:     %s\n", m.Created.Format(time.RFC3339), m.InputDigest)
	if m.KernelVersion != "" {
		fmt.Fprintf(&b, "kernel:    %s\n", m.KernelVersion)
	}
	fmt.Fprintf(&b, "root hash: %s\ncmdline:   %s\n", m.Verity.RootHash, m.Cmdline)
	if k := m.Spec.Kubernetes; k != nil {
		fmt.Fprintf(&b, "kubernetes: %s (kubelet, kubeadm; joins with the token released after attestation)\n", k.Version)
	}
	if m.Spec.ServerKey != "" {
		fmt.Fprintf(&b, "server key: %s (racklet-boot's answers are checked with it)\n", m.Spec.ServerKey)
	} else {
		fmt.Fprintf(&b, "server key: none (no --server-key: this image's nodes attest nothing)\n")
	}
	if k, i := m.Boot.Kernel, m.Boot.Initramfs; k != nil && i != nil {
		fmt.Fprintf(&b, "boot:      kernel %s (%d bytes), initramfs %s (%d bytes %s, %d modules)\n",
			k.File, k.Size, i.File, i.Size, i.Compression, len(i.Modules))
	}
	for _, bl := range m.Blobs() {
		fmt.Fprintf(&b, "%-14s %12d  %s\n", bl.File, bl.Size, bl.Digest)
	}
	return b.String()
}
