// Command racklet-release makes a release into a directory (see package
// release); scripts/release.sh runs it with the version and the time of
// the commit.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/internal/ociref"
	"github.com/racklet/racklet-boot/internal/release"
	"github.com/racklet/racklet-boot/sign"
)

func main() { cli.Main("racklet-release", newCommand()) }

func newCommand() *cobra.Command {
	var (
		o              release.Options
		key, push      string
		insecure       bool
		commands, plat []string
		logFlags       cli.LogFlags
		out            cli.Output
	)
	cmd := &cobra.Command{
		Use:   "racklet-release --version V --dir DIR --sign-key KEY",
		Short: "Build static binaries, SHA256SUMS, an SPDX SBOM and racklet-boot's signed OCI image",
		Example: `  RACKLET_KEY_PASSWORD=… racklet-release --version v0.3.0 --dir dist --sign-key release.key
  racklet-release --version v0.3.0 --dir dist --sign-key release.key --push registry.lan:5000/racklet/racklet-boot:v0.3.0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			if o.Version == "" || o.Dir == "" || key == "" {
				return cli.Usagef("--version, --dir and --sign-key are required")
			}
			pass, ok := os.LookupEnv("RACKLET_KEY_PASSWORD")
			if !ok {
				if pass, ok = os.LookupEnv("COSIGN_PASSWORD"); !ok {
					return cli.Usagef("set RACKLET_KEY_PASSWORD (or COSIGN_PASSWORD) to the signing key's passphrase")
				}
			}
			signer, err := sign.LoadPrivateKey(key, []byte(pass))
			if err != nil {
				return err
			}
			o.Signer, o.Log = signer, logFlags.Logger()
			if len(commands) > 0 {
				o.Commands = commands
			}
			if len(plat) > 0 {
				o.Platforms = plat
			}
			if epoch := os.Getenv("SOURCE_DATE_EPOCH"); epoch != "" {
				s, err := strconv.ParseInt(epoch, 10, 64)
				if err != nil {
					return cli.Usagef("SOURCE_DATE_EPOCH=%q is not a Unix time", epoch)
				}
				o.Created = time.Unix(s, 0).UTC()
			}
			res, err := release.Build(cmd.Context(), o)
			if err != nil {
				return err
			}
			if push != "" {
				if err := release.Push(cmd.Context(), res, o.Dir, push, ociref.Options{Insecure: insecure}); err != nil {
					return err
				}
			}
			return out.Write(cmd.OutOrStdout(), res, func(w io.Writer) error {
				for _, b := range res.Binaries {
					fmt.Fprintf(w, "%s  %s\n", b.SHA256, b.File)
				}
				fmt.Fprintf(w, "sbom:  %s\nimage: %s@%s (signed)\n", res.SBOM, res.ImageRef, res.Digest)
				if push != "" {
					fmt.Fprintf(w, "pushed %s\n", push)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Version, "version", "", "version stamped into the binaries and tagging the image (required)")
	f.StringVar(&o.Dir, "dir", "", "output directory (required)")
	f.StringVar(&key, "sign-key", "", "private key signing the image (passphrase from RACKLET_KEY_PASSWORD or COSIGN_PASSWORD)")
	f.StringVar(&o.Identity, "identity", "", "docker-reference the signature claims (where the image will be pulled from)")
	f.StringVar(&push, "push", "", "also copy the signed image to this registry reference")
	f.BoolVar(&insecure, "insecure", false, "allow a plain-HTTP registry for --push")
	f.StringSliceVar(&commands, "commands", nil, "commands to build (default "+strings.Join(release.DefaultCommands, ",")+")")
	f.StringSliceVar(&plat, "platforms", nil, "GOOS/GOARCH pairs (default "+strings.Join(release.DefaultPlatforms, ",")+")")
	logFlags.Register(cmd)
	out.Register(cmd)
	return cmd
}
