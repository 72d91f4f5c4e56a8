package main

import (
	"crypto/rsa"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/pisim"
	"github.com/racklet/racklet-boot/sign"
)

// eepromFlags are the EEPROM settings every simulated Pi gets.
type eepromFlags struct {
	prefix     string
	bootOrder  string
	httpHost   string
	httpPort   int
	httpPath   string
	pubKey     string
	signedBoot bool
	restarts   int
}

// apply sets the EEPROM settings of the flags on every Pi.
func (e *eepromFlags) apply(pis []*pisim.Pi) error {
	mode, ok := map[string]pisim.PrefixMode{"serial": pisim.PrefixSerial, "mac": pisim.PrefixMAC}[e.prefix]
	if !ok {
		return cli.Usagef("unknown --prefix %q: use serial or mac", e.prefix)
	}
	order, err := strconv.ParseUint(e.bootOrder, 0, 32)
	if err != nil {
		return cli.Usagef("--boot-order %q: want a number such as 0xf7 (HTTP) or 0xf2 (TFTP)", e.bootOrder)
	}
	var pub *rsa.PublicKey
	if e.pubKey != "" {
		if pub, err = sign.LoadBootPublicKey(e.pubKey); err != nil {
			return err
		}
	}
	for _, p := range pis {
		p.Prefix = mode
		p.BootOrder, p.HTTPHost, p.HTTPPort, p.HTTPPath = uint32(order), e.httpHost, e.httpPort, e.httpPath
		p.PubKey, p.SignedBoot, p.Restarts = pub, e.signedBoot, e.restarts
	}
	return nil
}

func (e *eepromFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&e.prefix, "prefix", "serial", "TFTP prefix mode: serial or mac")
	_ = cmd.RegisterFlagCompletionFunc("prefix", cobra.FixedCompletions([]string{"serial", "mac"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.Flags().StringVar(&e.bootOrder, "boot-order", "0x2", "EEPROM BOOT_ORDER, lowest nibble first: 2 TFTP, 7 HTTP boot (e.g. 0xf7, 0xf27)")
	cmd.Flags().StringVar(&e.httpHost, "http-host", "", "EEPROM HTTP_HOST: the HTTP boot server's IPv4 address")
	cmd.Flags().IntVar(&e.httpPort, "http-port", pisim.DefaultHTTPPort, "EEPROM HTTP_PORT")
	cmd.Flags().StringVar(&e.httpPath, "http-path", pisim.DefaultHTTPPath, "EEPROM HTTP_PATH")
	cmd.Flags().StringVar(&e.pubKey, "pubkey", "", "the RSA-2048 public key (PEM) in the EEPROM that boot.img must be signed with")
	cmd.Flags().BoolVar(&e.signedBoot, "signed-boot", false, "EEPROM SIGNED_BOOT=1: over TFTP, fetch boot.sig with boot.img and verify it")
	cmd.Flags().IntVar(&e.restarts, "restarts", 0, "times a Pi whose BOOT_ORDER ends in f starts over after every mode failed (the firmware never stops)")
}

func newSimulateCmd(g *globals) *cobra.Command {
	var iface, kind string
	var nodes int
	var seed uint64
	var dhcpTimeout time.Duration
	var r pisim.Rack
	var e eepromFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Play N Raspberry Pi bootloaders against a running server",
		Long: "Boot N simulated Raspberry Pi 4/5 bootloaders through DHCP and TFTP (or HTTP boot of a\n" +
			"signed boot.img with --boot-order 0xf7 --http-host ADDR --pubkey PEM), each on its own\n" +
			"macvlan of --interface with its own MAC, serial and address (needs root), and print\n" +
			"each node's boot timeline. The same --seed always gives the same serials and MACs.",
		Example: `  racklet-boot simulate --interface eth1 --nodes 4
  racklet-boot simulate -i br-rack -n 20 --kind rpi5 --stagger 200ms -o json
  racklet-boot simulate -i eth1 -n 2 --boot-order 0xf7 --http-host 10.0.0.2 --pubkey boot.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			pis, err := pisim.RackOf(nodes, kind, seed)
			if err != nil {
				return err
			}
			if err := e.apply(pis); err != nil {
				return err
			}
			for _, p := range pis {
				p.DHCPTimeout = dhcpTimeout
			}
			r.Transport, r.Pis, r.Logger = &pisim.MacvlanTransport{Parent: iface}, pis, g.logger()
			results := r.Run(cmd.Context())
			s := pisim.Summarize(results)
			err = out.Write(cmd.OutOrStdout(), results, func(w io.Writer) error {
				for _, res := range results {
					fmt.Fprintln(w, res.String())
				}
				_, err := fmt.Fprintln(w, s)
				return err
			})
			if err != nil {
				return err
			}
			if s.Failed > 0 {
				return fmt.Errorf("%d of %d simulated Pis did not load their kernel", s.Failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&iface, "interface", "i", "", "interface on the rack LAN (macvlans are made on it)")
	cmd.Flags().IntVarP(&nodes, "nodes", "n", 4, "number of simulated Pis")
	cmd.Flags().StringVar(&kind, "kind", "mixed", "rpi4, rpi5, or mixed (alternating)")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed for serials and MACs")
	cmd.Flags().IntVar(&r.Concurrency, "concurrency", 0, "Pis booting at once (0: all)")
	cmd.Flags().DurationVar(&r.Stagger, "stagger", 0, "delay between Pi power-ons")
	cmd.Flags().DurationVar(&dhcpTimeout, "dhcp-timeout", pisim.DefaultDHCPTimeout, "how long a Pi waits for a boot offer (the firmware: 45s)")
	_ = cmd.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"rpi4", "rpi5", "mixed"}, cobra.ShellCompDirectiveNoFileComp))
	e.register(cmd)
	out.Register(cmd)
	_ = cmd.MarkFlagRequired("interface")
	return cmd
}
