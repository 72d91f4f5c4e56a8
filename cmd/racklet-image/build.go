package main

import (
	"crypto/rsa"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/kube/profile"
	"github.com/racklet/racklet-boot/sign"
)

func newBuildCmd(g *globals) *cobra.Command {
	var (
		spec        image.Spec
		output      string
		push        string
		signKey     string
		bootKeyFile string
		serverKey   string
		kubeVersion string
		noCache     bool
		tempDir     string
		rootSize    int64
		bootSlot    int64
		dataSize    int64
		controlSize int64
		maxFile     int64
		maxRoot     int64
	)
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "build --base REF --platform linux/arm64 (--dir DIR | --push REF)",
		Short: "Build an image from an OCI base image",
		Example: `  # a directory, from the Debian base (bash examples/base/debian.sh --arch arm64 --out /var/tmp/base)
  racklet-image build --base oci-layout:/var/tmp/base:bookworm-arm64 --dir /tmp/img
  # straight into a registry, signed
  racklet-image build --base oci-layout:/var/tmp/base:bookworm-arm64 --push registry.lan:5000/racklet/os:v1 --sign-key racklet.key
  # with the A/B disk image for flashing an SD card
  racklet-image build --base oci-layout:/var/tmp/base:bookworm-arm64 --dir /tmp/img --disk
  # a Kubernetes node (base: bash examples/base/debian.sh --arch arm64 --profile kubernetes --out /var/tmp/base)
  racklet-image build --base oci-layout:/var/tmp/base:bookworm-arm64-kubernetes --dir /tmp/img --server-key server.pub --kubernetes v1.37.2`,
		Long: `Build turns an OCI base image into a bootable, immutable OS image: a FAT32 boot partition
(boot.vfat), the root file system as squashfs (root.squashfs) with its dm-verity hash tree
(root.verity), optionally an A/B disk image (disk.img.zst), and manifest.json pinning them.

boot.vfat is also the Raspberry Pi's boot.img (HTTP boot, or TFTP with boot_ramdisk=1): with
--boot-key it is signed for the Pi's EEPROM key and boot.sig is written beside it (at most 96 MiB).

--server-key names racklet-boot's server.pub (in its data directory): the initramfs carries it,
the manifest pins it, and the node agent accepts racklet-boot's answers (its name, the attestation
nonce, the released secrets) only when signed under it. An image without it attests nothing.

--kubernetes VERSION makes the image a Kubernetes node: kubelet and kubeadm of that version for the
image's architecture, built from the pinned k8s.io/kubernetes (build/kubernetes in a racklet-boot
checkout; cached), containerd's configuration, kernel modules, sysctls and cgroup command line, and
racklet-kube-join.service, which joins the cluster with the token racklet-boot releases after
attestation. The base must carry containerd, runc and the CNI plugins (debian.sh --profile kubernetes).

REF is host/repo:tag, host/repo@sha256:..., oci-layout:DIR[:tag] or docker-archive:FILE.
SOURCE_DATE_EPOCH, when set, fixes every timestamp; otherwise the base image's creation time does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cli.IsFormat(out.Format) { // --output DIR, as build spelled --dir before
				if output != "" {
					return cli.Usagef("give --dir DIR once (--output DIR is its old spelling)")
				}
				g.logger().Warn("--output DIR is deprecated: use --dir DIR (-o/--output is the output format, as in every command)")
				output, out.Format = out.Format, "table"
			}
			if (output == "") == (push == "") {
				return cli.Usagef("give exactly one of --dir DIR and --push REF")
			}
			if signKey != "" && push == "" {
				return cli.Usagef("--sign-key signs what --push pushes: give --push REF too (or sign a directory's push later with racklet-image sign)")
			}
			var (
				signer  signature.Signer
				bootKey *rsa.PrivateKey
				pass    []byte
				err     error
			)
			if signKey != "" || bootKeyFile != "" { // load the keys first: a wrong passphrase should not cost a build
				if pass, err = passphrase(cmd.ErrOrStderr(), false); err != nil {
					return err
				}
			}
			if signKey != "" {
				if signer, err = sign.LoadPrivateKey(signKey, pass); err != nil {
					return err
				}
			}
			if bootKeyFile != "" {
				if bootKey, err = sign.LoadBootKey(bootKeyFile, pass); err != nil {
					return err
				}
			}
			if serverKey != "" {
				b, err := os.ReadFile(serverKey)
				if err != nil {
					return fmt.Errorf("--server-key: %w", err)
				}
				spec.ServerKey = strings.TrimSpace(string(b))
			}
			if kubeVersion != "" {
				spec.Kubernetes = &profile.Spec{Version: kubeVersion}
			}
			spec.Insecure = g.insecure
			spec.DiskSizes.Root, spec.DiskSizes.Boot, spec.DiskSizes.Data, spec.DiskSizes.Control = rootSize, bootSlot, dataSize, controlSize
			log := g.logger()
			rep := newReporter(log)
			dir := output
			if push != "" {
				tmp, err := os.MkdirTemp(tempDir, "racklet-image-build-")
				if err != nil {
					return fmt.Errorf("make build directory: %w", err)
				}
				defer os.RemoveAll(tmp)
				dir = filepath.Join(tmp, "out")
			}
			bo := image.Options{Logger: log, Progress: rep.update, TempDir: tempDir, NoCache: noCache,
				MaxFileSize: maxFile, MaxRootSize: maxRoot}
			if bootKey != nil {
				bo.BootKey = bootKey
			}
			m, err := image.Build(cmd.Context(), spec, dir, bo)
			rep.finish()
			if err != nil {
				return err
			}
			res := built{Dir: output, Manifest: m}
			if push != "" {
				d, err := pushWithProgress(cmd, g, dir, push)
				if err != nil {
					return err
				}
				res.Pushed, res.Digest = push, d.String()
				if out.Format == "table" {
					fmt.Fprintf(cmd.OutOrStdout(), "pushed %s@%s\n", push, d)
				}
				if signer != nil {
					t, err := sign.ResolveTarget(cmd.Context(), push, g.registry())
					if err != nil {
						return err
					}
					if t.Digest != d {
						return fmt.Errorf("%s moved to %s while signing the pushed %s: not signed", push, t.Digest, d)
					}
					w := cmd.OutOrStdout()
					if out.Format != "table" {
						w = io.Discard
					}
					if err := signTarget(cmd.Context(), w, t, signer, "", g.registry()); err != nil {
						return err
					}
					res.Signed = true
				}
			}
			return out.Write(cmd.OutOrStdout(), res, func(w io.Writer) error {
				_, err := io.WriteString(w, m.Describe())
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Base, "base", "", "base image reference (required)")
	f.StringVar(&spec.Platform, "platform", "linux/arm64", "platform of the base image to use")
	f.StringVar(&output, "dir", "", "write the image to this directory")
	f.StringVar(&push, "push", "", "push the image to this reference instead of keeping a directory")
	f.StringVar(&signKey, "sign-key", "", "sign the pushed image with this private key (passphrase from "+passwordEnv+")")
	f.StringVar(&serverKey, "server-key", "", "racklet-boot's answer-signing public key (its data directory's server.pub), carried by the initramfs")
	f.StringVar(&bootKeyFile, "boot-key", "", "sign boot.vfat as the Raspberry Pi's boot.img with this RSA-2048 key (keygen --type rsa2048): writes boot.sig")
	f.StringVar(&kubeVersion, "kubernetes", "", "make a Kubernetes node image with kubelet and kubeadm of this version (v1.37.2, the pinned one)")
	f.StringVar(&spec.Overlay, "overlay", "", "directory of files to add over the root file system")
	f.StringVar(&spec.BootDir, "boot-dir", "", "directory of the root holding the boot files (default /boot/firmware, else /boot)")
	f.StringVar(&spec.ConfigTxt, "config-txt", "", "content of config.txt (default: the base's own)")
	f.StringVar(&spec.Cmdline, "cmdline", "", "kernel command line template (default: a console and the racklet.* words for racklet's initramfs)")
	f.StringVar(&spec.Agent, "agent", "", "static racklet-agent for the image's architecture (default: racklet-agent-linux-ARCH beside racklet-image)")
	f.StringSliceVar(&spec.Modules, "module", nil, "kernel module the initramfs carries beyond the boot path's (repeatable)")
	f.StringVar(&spec.Node.Overlay, "node-overlay", "", "racklet.overlay: where the root overlay's upper directory lives, tmpfs or data")
	f.StringVar(&spec.Node.OnFailure, "on-failure", "", "racklet.onfailure: reboot[:SECONDS], halt, or shell (with --boot-debug)")
	f.StringVar(&spec.Node.HAT, "hat", "", "racklet.hat: the HAT link's device, or none")
	f.BoolVar(&spec.Node.Debug, "boot-debug", false, "racklet.debug: a verbose initramfs agent")
	f.StringVar(&spec.Compression, "compression", "zstd", "root squashfs compression: zstd, xz or gzip")
	f.IntVar(&spec.BlockSize, "block-size", 128<<10, "root squashfs block size")
	f.IntVar(&spec.Level, "level", 0, "compression level (0: the compressor's default)")
	f.Int64Var(&spec.BootSize, "boot-size", 0, "boot partition volume size in bytes (0: fit the files)")
	f.BoolVar(&spec.Disk, "disk", false, "also write the A/B disk image disk.img.zst")
	f.BoolVar(&spec.CopySlotB, "copy-slot-b", false, "fill slot B of the disk with a copy of slot A")
	f.StringVar(&spec.DiskID, "disk-id", "", "MBR disk id of the A/B disk (8 hex digits), the same for every version of a rack's image; with it (or --disk) the build writes boot-b.vfat, slot B's boot partition")
	f.Int64Var(&rootSize, "root-slot-size", 0, "root partition size per slot in bytes (default 4 GiB)")
	f.Int64Var(&bootSlot, "boot-slot-size", 0, "boot partition size per slot in bytes (default 256 MiB)")
	f.Int64Var(&dataSize, "data-size", 0, "data partition size in bytes (default 64 MiB; the node grows it)")
	f.Int64Var(&controlSize, "control-size", 0, "boot control partition size in bytes (default 64 MiB)")
	f.BoolVar(&noCache, "no-cache", false, "rebuild even when --dir holds a build of the same inputs")
	f.StringVar(&tempDir, "temp-dir", "", "directory for the spilled root file system (default $TMPDIR)")
	f.Int64Var(&maxFile, "max-file-size", 0, "refuse a base image with a file larger than this many bytes (default 4 GiB, -1: no limit)")
	f.Int64Var(&maxRoot, "max-root-size", 0, "refuse a base image whose files add up to more bytes (default 16 GiB, -1: no limit)")
	out.Register(cmd)
	cmd.Flag("output").Usage = "output format: table, json or yaml (a directory here is the deprecated spelling of --dir)"
	_ = cmd.MarkFlagRequired("base")
	_ = cmd.MarkFlagDirname("dir")
	_ = cmd.RegisterFlagCompletionFunc("base", completeRef(g))
	_ = cmd.RegisterFlagCompletionFunc("push", completeRef(g))
	return cmd
}

// built is what build prints with -o json|yaml.
type built struct {
	Dir      string          `json:"dir,omitempty"`    // the output directory (--dir)
	Pushed   string          `json:"pushed,omitempty"` // the reference pushed to (--push)
	Digest   string          `json:"digest,omitempty"` // the pushed manifest's digest
	Signed   bool            `json:"signed,omitempty"`
	Manifest *image.Manifest `json:"manifest"`
}
