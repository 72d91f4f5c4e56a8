package main

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/sign"
)

func newBuildCmd(g *globals) *cobra.Command {
	var (
		spec        image.Spec
		output      string
		push        string
		signKey     string
		bootKeyFile string
		noCache     bool
		tempDir     string
		rootSize    int64
		bootSlot    int64
		dataSize    int64
		controlSize int64
		maxFile     int64
		maxRoot     int64
	)
	cmd := &cobra.Command{
		Use:   "build --base REF --platform linux/arm64 (--output DIR | --push REF)",
		Short: "Build an image from an OCI base image",
		Long: `Build turns an OCI base image into a bootable, immutable OS image: a FAT32 boot partition
(boot.vfat), the root file system as squashfs (root.squashfs) with its dm-verity hash tree
(root.verity), optionally an A/B disk image (disk.img.zst), and manifest.json pinning them.

boot.vfat is also the Raspberry Pi's boot.img (HTTP boot, or TFTP with boot_ramdisk=1): with
--boot-key it is signed for the Pi's EEPROM key and boot.sig is written beside it (at most 96 MiB).

REF is host/repo:tag, host/repo@sha256:..., oci-layout:DIR[:tag] or docker-archive:FILE.
SOURCE_DATE_EPOCH, when set, fixes every timestamp; otherwise the base image's creation time does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (output == "") == (push == "") {
				return errors.New("give exactly one of --output DIR and --push REF")
			}
			if signKey != "" && push == "" {
				return errors.New("--sign-key signs what --push pushes: give --push REF too (or sign a directory's push later with racklet-image sign)")
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
			if push != "" {
				d, err := artifact.Push(cmd.Context(), dir, push, g.registry())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "pushed %s@%s\n", push, d)
				if signer != nil {
					t, err := sign.ResolveTarget(cmd.Context(), push, g.registry())
					if err != nil {
						return err
					}
					if t.Digest != d {
						return fmt.Errorf("%s moved to %s while signing the pushed %s: not signed", push, t.Digest, d)
					}
					if err := signTarget(cmd.Context(), cmd.OutOrStdout(), t, signer, "", g.registry()); err != nil {
						return err
					}
				}
			}
			fmt.Fprint(cmd.OutOrStdout(), m.Describe())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Base, "base", "", "base image reference (required)")
	f.StringVar(&spec.Platform, "platform", "linux/arm64", "platform of the base image to use")
	f.StringVar(&output, "output", "", "write the image to this directory")
	f.StringVar(&push, "push", "", "push the image to this reference instead of keeping a directory")
	f.StringVar(&signKey, "sign-key", "", "sign the pushed image with this private key (passphrase from "+passwordEnv+")")
	f.StringVar(&bootKeyFile, "boot-key", "", "sign boot.vfat as the Raspberry Pi's boot.img with this RSA-2048 key (keygen --type rsa2048): writes boot.sig")
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
	f.BoolVar(&noCache, "no-cache", false, "rebuild even when --output holds a build of the same inputs")
	f.StringVar(&tempDir, "temp-dir", "", "directory for the spilled root file system (default $TMPDIR)")
	f.Int64Var(&maxFile, "max-file-size", 0, "refuse a base image with a file larger than this many bytes (default 4 GiB, -1: no limit)")
	f.Int64Var(&maxRoot, "max-root-size", 0, "refuse a base image whose files add up to more bytes (default 16 GiB, -1: no limit)")
	cmd.MarkFlagRequired("base")
	return cmd
}
