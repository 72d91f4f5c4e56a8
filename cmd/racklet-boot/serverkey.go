package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/adminclient"
	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/serverkey"
)

// serverKeyView is what server-key prints.
type serverKeyView struct {
	Key  string `json:"key"`  // "ed25519:<base64>"
	File string `json:"file"` // the data directory's server.pub
}

func newServerKeyCmd() *cobra.Command {
	var dataDir string
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "server-key",
		Short: "Print racklet-boot's answer-signing public key, creating the key pair on first use",
		Long: "racklet-boot signs the answers its node agents act on (whoami, the attestation challenge and\n" +
			"release) with a key in its data directory; images carry the public half (racklet-image build\n" +
			"--server-key). This prints it, creating the pair as serve would on first start, so an image can\n" +
			"be built before the server first runs.",
		Example: "  racklet-boot server-key --data-dir /var/lib/racklet\n" +
			"  racklet-image build --base … --server-key /var/lib/racklet/server.pub --dir /tmp/img",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("make the data directory: %w", err)
			}
			s, err := serverkey.Open(dataDir)
			if err != nil {
				return err
			}
			v := serverKeyView{Key: s.PublicText(), File: filepath.Join(dataDir, serverkey.PublicFile)}
			return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s\n(in %s)\n", v.Key, v.File)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", adminclient.DataDirDefault(), "racklet-boot's data directory (or $"+adminclient.EnvDataDir+")")
	_ = cmd.MarkFlagDirname("data-dir")
	out.Register(cmd)
	return cmd
}
