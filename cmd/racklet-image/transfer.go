package main

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/image/artifact"
	"github.com/racklet/racklet-boot/image/disk"
	"github.com/racklet/racklet-boot/internal/cli"
)

// pushed is what push prints with -o json|yaml.
type pushed struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
}

// pushWithProgress pushes dir to ref, showing the bytes as they go.
func pushWithProgress(cmd *cobra.Command, g *globals, dir, ref string) (v1.Hash, error) {
	p := cli.Stderr.NewProgress("push "+ref, g.logger())
	reg := g.registry()
	reg.Progress = p.Update
	d, err := artifact.Push(cmd.Context(), dir, ref, reg)
	p.Done()
	return d, err
}

func newPushCmd(g *globals) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "push DIR REF",
		Short: "Push a built image directory to a registry or oci-layout:DIR[:tag]",
		Example: `  racklet-image push /tmp/img registry.lan:5000/racklet/os:v1
  racklet-image push /tmp/img oci-layout:/srv/airgap:v1
  racklet-image push /tmp/img 127.0.0.1:5000/racklet/os:v1 --insecure -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			d, err := pushWithProgress(cmd, g, args[0], args[1])
			if err != nil {
				return err
			}
			v := pushed{Ref: args[1], Digest: d.String()}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s@%s\n", v.Ref, v.Digest)
				return err
			})
		},
		ValidArgsFunction: completeArgs(g, fileArg, refArg),
	}
	out.Register(cmd)
	return cmd
}

func newPullCmd(g *globals) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "pull REF DIR",
		Short: "Pull an image into a directory, checking every digest",
		Example: `  racklet-image pull registry.lan:5000/racklet/os:v1 /tmp/img
  racklet-image pull oci-layout:/srv/airgap:v1 /tmp/img -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			p := cli.Stderr.NewProgress("pull "+args[0], g.logger())
			reg := g.registry()
			reg.Progress = p.Update
			m, err := artifact.Pull(cmd.Context(), args[0], args[1], reg)
			p.Done()
			if err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), m, func(w io.Writer) error {
				_, err := io.WriteString(w, m.Describe())
				return err
			})
		},
		ValidArgsFunction: completeArgs(g, refArg, fileArg),
	}
	out.Register(cmd)
	return cmd
}

func newInspectCmd(g *globals) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "inspect REF|DIR",
		Short: "Show an image's manifest digest and its image manifest",
		Long: `Inspect prints the digest of the image's OCI manifest (what crane digest prints, what
signatures cover, what REF@sha256:… names; for a directory, the digest a push of it gets), then
its image manifest: base, root hash, command line and files.`,
		Example: `  racklet-image inspect registry.lan:5000/racklet/os:v1
  racklet-image inspect /tmp/img -o json
  racklet-image inspect oci-layout:/srv/airgap:v1 -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			d, err := artifact.Describe(cmd.Context(), args[0], g.registry())
			if err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), d, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "digest:    %s\n%s", d.Digest, d.Describe())
				return err
			})
		},
		ValidArgsFunction: completeArgs(g, refArg),
	}
	out.Register(cmd)
	return cmd
}

// flashed is what flash prints with -o json|yaml.
type flashed struct {
	Image    string `json:"image"`
	Device   string `json:"device"`
	Verified bool   `json:"verified"`
}

func newFlashCmd(g *globals) *cobra.Command {
	var yes bool
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "flash IMAGE DEVICE",
		Short: "Write a disk image (raw or .zst) to a device and verify it by reading it back",
		Long: `Flash writes IMAGE to DEVICE and reads it back. It refuses a device the running system
uses (mounted, holding the root file system, swap, or under LVM/dm-crypt that is), shows the
device's model and size, and asks before writing unless --yes is given. A DEVICE that is a
regular file (or does not exist) is written without asking.`,
		Example: "  racklet-image flash /tmp/img/disk.img.zst /dev/sdb\n  racklet-image flash disk.img.zst /dev/mmcblk0 --yes",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			t, err := disk.Inspect(args[1])
			if err != nil {
				return err
			}
			if err := t.InUse(); err != nil {
				return cli.Refused(err)
			}
			if t.Device && !yes {
				if err := confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), args[0], t); err != nil {
					return err
				}
			}
			p := cli.Stderr.NewProgress("flash "+args[1], g.logger())
			err = disk.Flash(cmd.Context(), args[0], args[1], p.Update)
			p.Done()
			if err != nil {
				return err
			}
			v := flashed{Image: args[0], Device: args[1], Verified: true}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s written to %s and verified\n", v.Image, v.Device)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "write without asking (the in-use checks still apply)")
	out.Register(cmd)
	return cmd
}

// confirm shows the target and asks; anything but yes (or no answer at
// all: a script without --yes) refuses.
func confirm(in io.Reader, out io.Writer, image string, t disk.Target) error {
	fmt.Fprintf(out, "About to write %s to %s\nEverything on %s will be lost. Write it? [y/N] ", image, t.Describe(), t.Path)
	line, err := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	case "":
		if err != nil {
			fmt.Fprintln(out)
			return cli.Usagef("not flashing %s: no answer on standard input (pass --yes to flash without asking)", t.Path)
		}
	}
	return cli.Refused(fmt.Errorf("not flashing %s: not confirmed", t.Path))
}
