package main

import (
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
		noCache     bool
		tempDir     string
		rootSize    int64
		bootSlot    int64
		dataSize    int64
		controlSize int64
	)
	cmd := &cobra.Command{
		Use:   "build --base REF --platform linux/arm64 (--output DIR | --push REF)",
		Short: "Build an image from an OCI base image",
		Long: `Build turns an OCI base image into a bootable, immutable OS image: a FAT32 boot partition
(boot.vfat), the root file system as squashfs (root.squashfs) with its dm-verity hash tree
(root.verity), optionally an A/B disk image (disk.img.zst), and manifest.json pinning them.

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
			var signer signature.Signer
			if signKey != "" { // load the key first: a wrong passphrase should not cost a build
				pass, err := passphrase(cmd.ErrOrStderr(), false)
				if err != nil {
					return err
				}
				if signer, err = sign.LoadPrivateKey(signKey, pass); err != nil {
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
			m, err := image.Build(cmd.Context(), spec, dir, image.Options{Logger: log, Progress: rep.update, TempDir: tempDir, NoCache: noCache})
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
	f.StringVar(&spec.Overlay, "overlay", "", "directory of files to add over the root file system")
	f.StringVar(&spec.BootDir, "boot-dir", "", "directory of the root holding the boot files (default /boot/firmware, else /boot)")
	f.StringVar(&spec.ConfigTxt, "config-txt", "", "content of config.txt (default: the base's own)")
	f.StringVar(&spec.Cmdline, "cmdline", "", "kernel command line template (default: dm-verity root via dm-mod.create)")
	f.StringVar(&spec.Compression, "compression", "zstd", "root squashfs compression: zstd, xz or gzip")
	f.IntVar(&spec.BlockSize, "block-size", 128<<10, "root squashfs block size")
	f.IntVar(&spec.Level, "level", 0, "compression level (0: the compressor's default)")
	f.Int64Var(&spec.BootSize, "boot-size", 0, "boot partition volume size in bytes (0: fit the files)")
	f.BoolVar(&spec.Disk, "disk", false, "also write the A/B disk image disk.img.zst")
	f.BoolVar(&spec.CopySlotB, "copy-slot-b", false, "fill slot B of the disk with a copy of slot A")
	f.Int64Var(&rootSize, "root-slot-size", 0, "root partition size per slot in bytes (default 4 GiB)")
	f.Int64Var(&bootSlot, "boot-slot-size", 0, "boot partition size per slot in bytes (default 256 MiB)")
	f.Int64Var(&dataSize, "data-size", 0, "data partition size in bytes (default 64 MiB; the node grows it)")
	f.Int64Var(&controlSize, "control-size", 0, "boot control partition size in bytes (default 64 MiB)")
	f.BoolVar(&noCache, "no-cache", false, "rebuild even when --output holds a build of the same inputs")
	f.StringVar(&tempDir, "temp-dir", "", "directory for the spilled root file system (default $TMPDIR)")
	cmd.MarkFlagRequired("base")
	return cmd
}
