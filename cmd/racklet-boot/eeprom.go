package main

import (
	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/boot/eeprom"
	"github.com/racklet/racklet-boot/rack"
)

func newEEPROMCmd() *cobra.Command {
	var (
		config, mode, prefix, output string
		opts                         eeprom.Options
	)
	cmd := &cobra.Command{
		Use:   "eeprom --config rack.yaml [--mode tftp|http] [--pubkey PUB.pem]",
		Short: "Print the Raspberry Pi bootloader EEPROM settings this rack needs",
		Long: "Print the rpi-eeprom-config lines (BOOT_ORDER, TFTP_PREFIX, TFTP_IP, HTTP_HOST/PORT/PATH,\n" +
			"PXE_OPTION43) that make a Pi boot from racklet-boot as the rack config sets it up, and how to\n" +
			"apply them. HTTP boot needs the RSA-2048 public key that signs boot.img (racklet-image keygen\n" +
			"--type rsa2048; racklet-image build --boot-key): the EEPROM gets it with rpi-eeprom-config --pubkey.",
		Example: "  racklet-boot eeprom --config /etc/racklet/rack.yaml > boot.conf\n" +
			"  racklet-boot eeprom --config rack.yaml --mode http --pubkey eeprom.pub -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := rack.Load(config)
			if err != nil {
				return err
			}
			opts.Mode, opts.Prefix = eeprom.Mode(mode), eeprom.Prefix(prefix)
			s, err := eeprom.For(cfg, opts)
			if err != nil {
				return err
			}
			return s.Write(cmd.OutOrStdout(), output)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&config, "config", "c", "rack.yaml", "rack config file")
	f.StringVar(&mode, "mode", string(eeprom.ModeTFTP), "boot mode: tftp (network boot) or http (signed boot.img)")
	f.StringVar(&prefix, "prefix", string(eeprom.PrefixSerial), "TFTP_PREFIX form: serial or mac")
	f.StringVar(&opts.HTTPPath, "http-path", eeprom.DefaultHTTPPath, "HTTP_PATH")
	f.StringVar(&opts.PubKeyFile, "pubkey", "", "PEM RSA-2048 public key that verifies boot.img (http mode)")
	f.BoolVar(&opts.SDFirst, "sd-first", false, "try the SD card before the network (nodes that keep an A/B disk)")
	f.StringVarP(&output, "output", "o", "table", "output format: table (the boot.conf text, each setting explained in a comment), json or yaml")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	_ = cmd.MarkFlagFilename("pubkey", "pem", "pub")
	return cmd
}
