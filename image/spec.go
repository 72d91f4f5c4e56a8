// Package image is the build pipeline of racklet-image: it turns an OCI base image into a
// bootable, immutable OS image — a FAT32 boot partition, a squashfs root with its dm-verity
// hash tree, an optional A/B disk image and a JSON manifest that pins them — and defines the
// on-disk layout of a build's output directory.
//
// Output directory (also the content of the OCI artifact, see package image/artifact):
//
//	manifest.json   Manifest: base digest, inputs, sizes and digests, root hash, command line
//	boot.vfat       FAT32 boot partition (no partition table): the Pi's boot.img
//	root.squashfs   root file system
//	root.verity     dm-verity hash device of root.squashfs (superblock + tree)
//	disk.img.zst    A/B disk image, zstd-compressed (optional; see package image/disk)
//	boot.sig        the Pi's RSA signature of boot.vfat as boot.img (optional, Options.BootKey)
//
// Builds are reproducible: times come from SOURCE_DATE_EPOCH or the base image's creation
// time, and the verity salt and UUID, the FAT volume serials and the MBR disk ID are derived
// from the input digest (base manifest digest, overlay content and spec).
package image

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/image/disk"
	"github.com/racklet/racklet-boot/image/squashfs"
	"github.com/racklet/racklet-boot/kube/profile"
)

// ErrSpec means the build spec is invalid.
var ErrSpec = errors.New("invalid build spec")

// Spec is a declarative build: what goes in and how the outputs are shaped.
type Spec struct {
	// Base is the base image: host/repo:tag, host/repo@sha256:..., oci-layout:DIR[:tag] or
	// docker-archive:FILE.
	Base string `yaml:"base" json:"base"`
	// Platform picks the variant of a multi-platform base; default linux/arm64.
	Platform string `yaml:"platform,omitempty" json:"platform,omitempty"`
	// Overlay is a directory copied over the root file system (owned by 0:0).
	Overlay string `yaml:"overlay,omitempty" json:"overlay,omitempty"`
	// Insecure allows a plain-HTTP registry.
	Insecure bool `yaml:"insecure,omitempty" json:"insecure,omitempty"`
	// BootDir is the directory of the root file system whose files form the boot partition;
	// default /boot/firmware when it exists, else /boot.
	BootDir string `yaml:"bootDir,omitempty" json:"bootDir,omitempty"`
	// ConfigTxt replaces config.txt; default: the base's own, else a minimal arm64 one.
	ConfigTxt string `yaml:"configTxt,omitempty" json:"configTxt,omitempty"`
	// Cmdline is the kernel command line template (text/template over CmdlineVars);
	// default DefaultCmdline.
	Cmdline string `yaml:"cmdline,omitempty" json:"cmdline,omitempty"`
	// Compression of the root squashfs: zstd (default), xz or gzip.
	Compression string `yaml:"compression,omitempty" json:"compression,omitempty"`
	// BlockSize of the root squashfs; default 131072.
	BlockSize int `yaml:"blockSize,omitempty" json:"blockSize,omitempty"`
	// Level of the compressor; 0 is its default.
	Level int `yaml:"level,omitempty" json:"level,omitempty"`
	// BootSize is the boot partition volume size in bytes; 0 sizes it to its files.
	BootSize int64 `yaml:"bootSize,omitempty" json:"bootSize,omitempty"`
	// Disk also writes the A/B disk image.
	Disk bool `yaml:"disk,omitempty" json:"disk,omitempty"`
	// DiskSizes are the partition sizes of the disk image.
	DiskSizes disk.Sizes `yaml:"diskSizes,omitempty" json:"diskSizes,omitempty"`
	// CopySlotB fills slot B of the disk with a copy of slot A instead of leaving it empty.
	CopySlotB bool `yaml:"copySlotB,omitempty" json:"copySlotB,omitempty"`
	// DiskID is the MBR disk id (8 hex digits) of the A/B disk: every version of a rack's
	// image must carry the same one, since a disk keeps the id it was flashed with and each
	// slot's command line names its root by it (racklet.rootdev=PARTUUID=<id>-<part>).
	// Default: derived from the input digest. Setting it, or Disk, makes the build write a
	// boot partition per slot: boot.vfat naming root 5 (slot A), boot-b.vfat root 6 (slot B).
	DiskID string `yaml:"diskId,omitempty" json:"diskId,omitempty"`
	// Agent is the static racklet-agent executable for the image's architecture: the
	// initramfs's /init and the root's /usr/lib/racklet/racklet-agent. Default: the file
	// racklet-agent-linux-<arch> beside the running executable.
	Agent string `yaml:"agent,omitempty" json:"agent,omitempty"`
	// Modules are kernel modules the initramfs carries beyond initramfs.Required and
	// initramfs.Drivers (names or aliases, as modprobe takes them); each must be in the kernel.
	Modules []string `yaml:"modules,omitempty" json:"modules,omitempty"`
	// Node holds the racklet.* settings the image fixes on its kernel command line.
	Node NodeSettings `yaml:"node,omitempty" json:"node,omitempty"`
	// ServerKey is racklet-boot's answer-signing public key ("ed25519:<base64>",
	// its data directory's server.pub). The initramfs carries it at
	// bootparams.ServerKeyFile, and the manifest pins it (here, in the spec): the
	// agent takes a node name, a nonce or secrets only from answers signed under
	// it. Without one, the image's nodes attest nothing.
	ServerKey string `yaml:"serverKey,omitempty" json:"serverKey,omitempty"`
	// Kubernetes makes the image a Kubernetes node (package kube/profile):
	// kubelet and kubeadm of this version for the image's architecture, the
	// container runtime's configuration, the kernel modules, sysctls and
	// cgroup command line Kubernetes needs, and the unit that joins the
	// cluster with the join facts released after attestation. The base must
	// carry profile.BasePackages (examples/base/debian.sh --profile kubernetes).
	Kubernetes *profile.Spec `yaml:"kubernetes,omitempty" json:"kubernetes,omitempty"`
}

// NodeSettings are the racklet.* settings of the command line that an image fixes (package
// bootparams); empty ones leave the agent's defaults.
type NodeSettings struct {
	// Overlay is where the root overlay's upper directory lives: tmpfs (default) or data.
	Overlay string `yaml:"overlay,omitempty" json:"overlay,omitempty"`
	// OnFailure is what a failed boot does: reboot[:SECONDS] (default reboot:10), halt, or
	// shell (only with Debug).
	OnFailure string `yaml:"onFailure,omitempty" json:"onFailure,omitempty"`
	// HAT is the HAT link's device, or none for a node without a HAT; default: the agent's.
	HAT string `yaml:"hat,omitempty" json:"hat,omitempty"`
	// Debug makes the agent verbose on the console and allows OnFailure shell.
	Debug bool `yaml:"debug,omitempty" json:"debug,omitempty"`
}

// params checks the settings and returns them as bootparams fields.
func (n NodeSettings) params() (bootparams.Params, error) {
	p := bootparams.Params{Overlay: n.Overlay, HAT: n.HAT, Debug: n.Debug}
	var errs []error
	if n.OnFailure != "" {
		q, _, err := bootparams.Parse(bootparams.Prefix + "onfailure=" + n.OnFailure)
		if err != nil {
			errs = append(errs, fmt.Errorf("node.onFailure %q: want reboot[:SECONDS], halt or shell", n.OnFailure))
		}
		p.OnFailure, p.RebootAfter = q.OnFailure, q.RebootAfter
	}
	switch p.OnFailure {
	case "", bootparams.FailReboot, bootparams.FailHalt:
	case bootparams.FailShell:
		if !p.Debug {
			errs = append(errs, errors.New("node.onFailure shell: a shell on a node needs node.debug too"))
		}
	default:
		errs = append(errs, fmt.Errorf("node.onFailure %q: want reboot[:SECONDS], halt or shell", n.OnFailure))
	}
	if p.RebootAfter < 0 {
		errs = append(errs, fmt.Errorf("node.onFailure %q: the reboot delay is negative", n.OnFailure))
	}
	switch p.Overlay {
	case "", bootparams.OverlayTmpfs, bootparams.OverlayData:
	default:
		errs = append(errs, fmt.Errorf("node.overlay %q: want tmpfs or data", n.Overlay))
	}
	if strings.ContainsAny(p.HAT, " \t\n\"") {
		errs = append(errs, fmt.Errorf("node.hat %q: a device path without spaces or quotes", n.HAT))
	}
	return p, errors.Join(errs...)
}

// slotted reports whether the build makes a boot partition per A/B slot
// (a disk image, or a disk id shared with other versions).
func (s Spec) slotted() bool { return s.Disk || s.DiskID != "" }

// diskID is the A/B disk's MBR id: the spec's, else derived from the input digest.
func (s Spec) diskID(inputDigest string) uint32 {
	if id, err := strconv.ParseUint(s.DiskID, 16, 32); err == nil && id != 0 {
		return uint32(id)
	}
	return derive32(inputDigest, "disk id")
}

// WithDefaults returns the spec with every default filled in.
func (s Spec) WithDefaults() Spec {
	if s.Platform == "" {
		s.Platform = "linux/arm64"
	}
	if s.Compression == "" {
		s.Compression = string(squashfs.Zstd)
	}
	if s.BlockSize == 0 {
		s.BlockSize = 128 << 10
	}
	if s.Cmdline == "" {
		s.Cmdline = DefaultCmdline
	}
	return s
}

// Validate checks the spec after defaults.
func (s Spec) Validate() error {
	var errs []error
	if s.Base == "" {
		errs = append(errs, errors.New("base: an image reference is required"))
	}
	if p := strings.Split(s.Platform, "/"); len(p) < 2 || p[0] == "" || p[1] == "" {
		errs = append(errs, fmt.Errorf("platform %q: want os/arch[/variant]", s.Platform))
	}
	switch squashfs.Compression(s.Compression) {
	case squashfs.Zstd, squashfs.XZ, squashfs.Gzip:
	default:
		errs = append(errs, fmt.Errorf("compression %q: want zstd, xz or gzip", s.Compression))
	}
	if b := s.BlockSize; b < 4096 || b > 1<<20 || b&(b-1) != 0 {
		errs = append(errs, fmt.Errorf("blockSize %d: want a power of two from 4096 to 1048576", b))
	}
	if s.BootSize < 0 {
		errs = append(errs, fmt.Errorf("bootSize %d is negative", s.BootSize))
	}
	if _, err := parseCmdline(s.Cmdline); err != nil {
		errs = append(errs, err)
	}
	if _, err := s.Node.params(); err != nil {
		errs = append(errs, err)
	}
	if s.DiskID != "" {
		if id, err := strconv.ParseUint(s.DiskID, 16, 32); err != nil || len(s.DiskID) != 8 || id == 0 || strings.ToLower(s.DiskID) != s.DiskID {
			errs = append(errs, fmt.Errorf("diskId %q: want 8 lower-case hex digits, not all zero", s.DiskID))
		}
	}
	for _, m := range s.Modules {
		if m == "" || strings.ContainsAny(m, " \t\n/") {
			errs = append(errs, fmt.Errorf("modules: %q is not a module name or alias", m))
		}
	}
	if s.ServerKey != "" {
		if _, err := hatlink.ParseKey(s.ServerKey); err != nil {
			errs = append(errs, fmt.Errorf("serverKey: %w (racklet-boot's server.pub)", err))
		}
	}
	if s.Kubernetes != nil {
		if err := s.Kubernetes.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrSpec, errors.Join(errs...))
	}
	return nil
}
