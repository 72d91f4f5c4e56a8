// Command racklet-image builds bootable, immutable OS images from OCI base images and moves
// them between output directories, registries, OCI layouts and SD cards:
//
//	racklet-image build --base REF --platform linux/arm64 (--dir DIR | --push REF) [--overlay DIR] [--insecure]
//	racklet-image push DIR REF | pull REF DIR | inspect REF|DIR [-o table|json|yaml]
//	racklet-image keygen --prefix PREFIX | sign REF --key KEY | verify REF --key PUB
//	racklet-image copy SRC DST | flash IMAGE DEVICE | version
package main

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/internal/ociref"
	"github.com/racklet/racklet-boot/sign"
)

func init() { cli.Classifiers = append(cli.Classifiers, exitCode) }

func main() { cli.Main("racklet-image", newRoot()) }

// exitCode maps the libraries' errors to exit codes: an image whose
// signature is missing or does not verify is refused; a registry's 404 or
// unknown name/manifest is not found.
func exitCode(err error) int {
	if errors.Is(err, sign.ErrNoSignature) || errors.Is(err, sign.ErrBadSignature) || errors.Is(err, sign.ErrDigestMismatch) {
		return cli.ExitRefused
	}
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return cli.ExitNotFound
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return cli.ExitNotFound
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return cli.ExitRefused
			}
		}
	}
	return 0
}

// globals are the flags every command shares.
type globals struct {
	log      cli.LogFlags
	insecure bool
}

func (g *globals) logger() *slog.Logger { return g.log.Logger() }

// registry is how the commands reach registries (--insecure).
func (g *globals) registry() ociref.Options { return ociref.Options{Insecure: g.insecure} }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "racklet-image",
		Short: "Build, move and flash immutable OS images for Racklet nodes",
		Long: `racklet-image builds bootable, immutable OS images from OCI base images and moves them
between output directories, registries, OCI layouts and SD cards.

An image REF is host/repo:tag, host/repo@sha256:…, docker://host/repo:tag,
oci-layout:DIR[:tag|@sha256:…] or docker-archive:FILE[:name:tag], as skopeo users write them.
Private keys are encrypted: their passphrase comes from RACKLET_KEY_PASSWORD (or COSIGN_PASSWORD),
else a prompt on the terminal.`,
	}
	g.log.Register(root)
	root.PersistentFlags().BoolVar(&g.insecure, "insecure", false, "allow plain-HTTP registries")
	root.AddCommand(newBuildCmd(g), newPushCmd(g), newPullCmd(g), newInspectCmd(g), newFlashCmd(g), newVersionCmd())
	root.AddCommand(signingCommands(g)...)
	return root
}
