package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/image/disk"
)

// APIVersion names the schema of Manifest.
const APIVersion = "racklet.io/image/v1alpha1"

// Names of the files of a build's output directory.
const (
	ManifestFile = "manifest.json"
	BootFile     = "boot.vfat"
	RootFile     = "root.squashfs"
	VerityFile   = "root.verity"
	DiskFile     = "disk.img.zst"
	// BootBFile is slot B's boot partition of a slotted build (Spec.DiskID or Spec.Disk):
	// boot.vfat's files with a command line naming root partition 6.
	BootBFile = "boot-b.vfat"
	// BootSigFile is boot.vfat's boot.sig (rpi-eeprom-digest's format), written when
	// the build has a boot signing key. The Pi asks for it beside boot.img, and
	// boot.img is boot.vfat itself: one artifact, not two identical ones.
	BootSigFile = "boot.sig"
)

// MaxBootImg is the largest boot.img the Raspberry Pi bootloader loads into RAM; a build
// that signs boot.vfat as boot.img fails past it.
const MaxBootImg = 96 << 20

// Manifest describes a built image; it pins every output by digest.
type Manifest struct {
	APIVersion string    `json:"apiVersion"`
	Created    time.Time `json:"created"`
	Base       Base      `json:"base"`
	// InputDigest hashes the base manifest digest, the overlay content and the spec: the
	// cache key of a build and the seed of its derived identifiers.
	InputDigest   string     `json:"inputDigest"`
	Spec          Spec       `json:"spec"`
	KernelVersion string     `json:"kernelVersion,omitempty"`
	Cmdline       string     `json:"cmdline"`
	Boot          BootInfo   `json:"boot"`
	Root          RootInfo   `json:"root"`
	Verity        VerityInfo `json:"verity"`
	Disk          *DiskInfo  `json:"disk,omitempty"`
	// BootB describes boot-b.vfat, slot B's boot partition, in a slotted build; boot.vfat
	// is then slot A's.
	BootB *BootBInfo `json:"bootB,omitempty"`
	// BootSig describes boot.sig, the Pi's signature of boot.vfat served as boot.img;
	// absent when the build had no boot signing key.
	BootSig *BootSigInfo `json:"bootSig,omitempty"`
}

// BootBInfo describes boot-b.vfat.
type BootBInfo struct {
	Blob
	// Cmdline is its command line (racklet.rootdev names root partition 6).
	Cmdline string `json:"cmdline"`
}

// BootSigInfo describes boot.sig.
type BootSigInfo struct {
	Blob
	// KeyID names the RSA-2048 public key that verifies it: "sha256:" and the hex SHA-256
	// of its PKIX DER (sign.KeyID).
	KeyID string `json:"keyId"`
	// TS is the signature's "ts:" line: the build's time (SOURCE_DATE_EPOCH).
	TS int64 `json:"ts"`
}

// Base identifies the base image.
type Base struct {
	Ref      string `json:"ref"`
	Digest   string `json:"digest"`
	Platform string `json:"platform"`
}

// Blob is one output file.
type Blob struct {
	File   string `json:"file"`
	Size   int64  `json:"size"`
	Digest string `json:"digest"`
}

// BootInfo describes the boot partition.
type BootInfo struct {
	Blob
	Files  []string `json:"files"`
	Serial string   `json:"serial"`
	// Kernel is the kernel in the boot partition: its file name there, size and digest.
	Kernel *Blob `json:"kernel,omitempty"`
	// Initramfs is racklet's initramfs in the boot partition.
	Initramfs *InitramfsInfo `json:"initramfs,omitempty"`
	// UKI is the unified kernel image (systemd's EFI stub with the command line, Kernel and
	// Initramfs) that UEFI PXE clients boot, when the root has the stub (bootaa64.efi).
	UKI *Blob `json:"uki,omitempty"`
}

// InitramfsInfo describes racklet's initramfs (see package image/initramfs).
type InitramfsInfo struct {
	// Blob names the file in the boot partition, with its size and digest.
	Blob
	// Compression is zstd or gzip, as the kernel's config allows.
	Compression string `json:"compression"`
	// Agent is the digest of racklet-agent: /init here and /usr/lib/racklet/racklet-agent in
	// the root.
	Agent string `json:"agent"`
	// Modules are the module files /init loads, in order.
	Modules []string `json:"modules"`
}

// RootInfo describes the root squashfs.
type RootInfo struct {
	Blob
	Compression string `json:"compression"`
	BlockSize   int    `json:"blockSize"`
	Inodes      uint32 `json:"inodes"`
}

// VerityInfo describes the dm-verity hash device of the root.
type VerityInfo struct {
	Blob
	Algorithm  string `json:"algorithm"`
	RootHash   string `json:"rootHash"`
	Salt       string `json:"salt"`
	UUID       string `json:"uuid"`
	DataBlocks uint64 `json:"dataBlocks"`
	// Offset is where the hash device starts in a root partition of the disk.
	Offset int64 `json:"offset"`
}

// DiskInfo describes the A/B disk image.
type DiskInfo struct {
	Blob
	// RawSize and RawDigest describe the uncompressed image.
	RawSize    int64            `json:"rawSize"`
	RawDigest  string           `json:"rawDigest"`
	DiskID     string           `json:"diskId"`
	Partitions []disk.Partition `json:"partitions"`
}

// ReadManifest reads the manifest of an output directory.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read image manifest: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m, nil
}

// ErrManifest means an image manifest is malformed.
var ErrManifest = errors.New("malformed image manifest")

// ParseManifest decodes and checks an image manifest: its schema version, and blob names that
// are plain file names with sha256 digests.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if m.APIVersion != APIVersion {
		return nil, fmt.Errorf("%w: apiVersion %q, want %q", ErrManifest, m.APIVersion, APIVersion)
	}
	for _, bl := range m.pinned() {
		if bl.File == "" || bl.File != filepath.Base(bl.File) || bl.File == "." || bl.File == ".." || strings.ContainsAny(bl.File, "/\\") {
			return nil, fmt.Errorf("%w: blob file name %q", ErrManifest, bl.File)
		}
		if len(bl.Digest) != len("sha256:")+64 || !strings.HasPrefix(bl.Digest, "sha256:") {
			return nil, fmt.Errorf("%w: blob %s digest %q", ErrManifest, bl.File, bl.Digest)
		}
		if bl.Size < 0 {
			return nil, fmt.Errorf("%w: blob %s size %d", ErrManifest, bl.File, bl.Size)
		}
	}
	return &m, nil
}

// pinned lists every file the manifest pins: the output files and the boot files it names.
func (m *Manifest) pinned() []Blob {
	out := m.Blobs()
	if m.Boot.Kernel != nil {
		out = append(out, *m.Boot.Kernel)
	}
	if m.Boot.Initramfs != nil {
		out = append(out, m.Boot.Initramfs.Blob)
	}
	if m.Boot.UKI != nil {
		out = append(out, *m.Boot.UKI)
	}
	return out
}

// Blobs lists the output files the manifest pins.
func (m *Manifest) Blobs() []Blob {
	out := []Blob{m.Boot.Blob, m.Root.Blob, m.Verity.Blob}
	if m.Disk != nil {
		out = append(out, m.Disk.Blob)
	}
	if m.BootB != nil {
		out = append(out, m.BootB.Blob)
	}
	if m.BootSig != nil {
		out = append(out, m.BootSig.Blob)
	}
	return out
}

// hashFile returns the size and "sha256:<hex>" digest of a file.
func hashFile(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func blobOf(dir, name string) (Blob, error) {
	n, d, err := hashFile(filepath.Join(dir, name))
	if err != nil {
		return Blob{}, fmt.Errorf("hash %s: %w", name, err)
	}
	return Blob{File: name, Size: n, Digest: d}, nil
}

// Check verifies that every blob of the manifest is in dir with its size and digest.
func (m *Manifest) Check(dir string) error {
	for _, b := range m.Blobs() {
		got, err := blobOf(dir, b.File)
		if err != nil {
			return err
		}
		if got != b {
			return fmt.Errorf("%s: %d bytes %s, manifest says %d bytes %s", b.File, got.Size, got.Digest, b.Size, b.Digest)
		}
	}
	return nil
}

// CheckSizes is the cheap form of Check used by the build cache: every blob is present with
// its size. Push and pull verify digests in full.
func (m *Manifest) CheckSizes(dir string) error {
	for _, b := range m.Blobs() {
		fi, err := os.Stat(filepath.Join(dir, b.File))
		if err != nil {
			return err
		}
		if fi.Size() != b.Size {
			return fmt.Errorf("%s: %d bytes, manifest says %d", b.File, fi.Size(), b.Size)
		}
	}
	return nil
}
