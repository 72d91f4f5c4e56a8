package main

import (
	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/rack"
)

func newServeCmd(g *globals) *cobra.Command {
	var config string
	var o server.Options
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve DHCP, TFTP and HTTP to the rack from a rack config",
		Long: "Serve DHCP (full or proxy), TFTP and HTTP on the rack LAN. The config is reloaded\n" +
			"when the file changes and on SIGHUP; a broken new config is rejected and the old one keeps serving.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rack.Load(config)
			if err != nil {
				return err
			}
			o.ConfigFile, o.Logger = config, g.logger()
			s, err := server.New(cfg, o)
			if err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&config, "config", "c", "rack.yaml", "rack config file")
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "state directory (default: server.dataDir from the config)")
	cmd.Flags().StringVar(&o.TFTPAddr, "tftp-listen", "", "TFTP listen address (default :server.tftpPort)")
	cmd.Flags().StringVar(&o.HTTPAddr, "http-listen", "", "HTTP listen address (default :server.httpPort)")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}
