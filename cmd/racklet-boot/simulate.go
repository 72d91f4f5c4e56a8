package main

import (
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/pisim"
	"github.com/racklet/racklet-boot/sign"
)

type simulateOptions struct {
	iface       string
	nodes       int
	kind        string
	seed        uint64
	concurrency int
	stagger     time.Duration
	prefix      string
	output      string
	bootOrder   string
	httpHost    string
	httpPort    int
	httpPath    string
	pubKey      string
	signedBoot  bool
	restarts    int
}

// eeprom applies the EEPROM settings of the flags to every Pi.
func (o *simulateOptions) eeprom(pis []*pisim.Pi) error {
	order, err := strconv.ParseUint(o.bootOrder, 0, 32)
	if err != nil {
		return fmt.Errorf("--boot-order %q: want a number such as 0xf7 (HTTP) or 0xf2 (TFTP)", o.bootOrder)
	}
	var pub *rsa.PublicKey
	if o.pubKey != "" {
		if pub, err = sign.LoadBootPublicKey(o.pubKey); err != nil {
			return err
		}
	}
	for _, p := range pis {
		switch o.prefix {
		case "serial":
			p.Prefix = pisim.PrefixSerial
		case "mac":
			p.Prefix = pisim.PrefixMAC
		default:
			return fmt.Errorf("unknown --prefix %q: use serial or mac", o.prefix)
		}
		p.BootOrder, p.HTTPHost, p.HTTPPort, p.HTTPPath = uint32(order), o.httpHost, o.httpPort, o.httpPath
		p.PubKey, p.SignedBoot, p.Restarts = pub, o.signedBoot, o.restarts
	}
	return nil
}

func newSimulateCmd(g *globals) *cobra.Command {
	o := &simulateOptions{}
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Play N Raspberry Pi bootloaders against a running server",
		Long: "Boot N simulated Raspberry Pi 4/5 bootloaders through DHCP and TFTP (or HTTP boot of a\n" +
			"signed boot.img with --boot-order 0xf7 --http-host ADDR --pubkey PEM), each on its own\n" +
			"macvlan of --interface with its own MAC, serial and address (needs root), and print\n" +
			"each node's boot timeline. The same --seed always gives the same serials and MACs.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pis, err := rackOfPis(o.nodes, o.kind, o.seed)
			if err != nil {
				return err
			}
			if err := o.eeprom(pis); err != nil {
				return err
			}
			r := &pisim.Rack{
				Transport:   &pisim.MacvlanTransport{Parent: o.iface},
				Pis:         pis,
				Concurrency: o.concurrency,
				Stagger:     o.stagger,
				Logger:      g.logger(),
			}
			results := r.Run(cmd.Context())
			if err := printResults(cmd.OutOrStdout(), results, o.output); err != nil {
				return err
			}
			if s := pisim.Summarize(results); s.Failed > 0 {
				return fmt.Errorf("%d of %d simulated Pis did not load their kernel", s.Failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.iface, "interface", "i", "", "interface on the rack LAN (macvlans are made on it)")
	cmd.Flags().IntVarP(&o.nodes, "nodes", "n", 4, "number of simulated Pis")
	cmd.Flags().StringVar(&o.kind, "kind", "mixed", "rpi4, rpi5, or mixed (alternating)")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "seed for serials and MACs")
	cmd.Flags().IntVar(&o.concurrency, "concurrency", 0, "Pis booting at once (0: all)")
	cmd.Flags().DurationVar(&o.stagger, "stagger", 0, "delay between Pi power-ons")
	cmd.Flags().StringVar(&o.prefix, "prefix", "serial", "TFTP prefix mode: serial or mac")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	cmd.Flags().StringVar(&o.bootOrder, "boot-order", "0x2", "EEPROM BOOT_ORDER, lowest nibble first: 2 TFTP, 7 HTTP boot (e.g. 0xf7, 0xf27)")
	cmd.Flags().StringVar(&o.httpHost, "http-host", "", "EEPROM HTTP_HOST: the HTTP boot server's IPv4 address")
	cmd.Flags().IntVar(&o.httpPort, "http-port", pisim.DefaultHTTPPort, "EEPROM HTTP_PORT")
	cmd.Flags().StringVar(&o.httpPath, "http-path", pisim.DefaultHTTPPath, "EEPROM HTTP_PATH")
	cmd.Flags().StringVar(&o.pubKey, "pubkey", "", "the RSA-2048 public key (PEM) in the EEPROM that boot.img must be signed with")
	cmd.Flags().BoolVar(&o.signedBoot, "signed-boot", false, "EEPROM SIGNED_BOOT=1: over TFTP, fetch boot.sig with boot.img and verify it")
	cmd.Flags().IntVar(&o.restarts, "restarts", 0, "times a Pi whose BOOT_ORDER ends in f starts over after every mode failed (the firmware never stops)")
	_ = cmd.MarkFlagRequired("interface")
	return cmd
}

// rackOfPis makes n simulated Pis of the kind asked for; mixed alternates
// Pi 4 and Pi 5.
func rackOfPis(n int, kind string, seed uint64) ([]*pisim.Pi, error) {
	if n < 1 || n > 1000 {
		return nil, fmt.Errorf("--nodes %d: want 1 to 1000", n)
	}
	switch kind {
	case "rpi4":
		return pisim.NewPis(n, 4, seed), nil
	case "rpi5":
		return pisim.NewPis(n, 5, seed), nil
	case "mixed":
		return pisim.NewMixedRack(n, seed)
	}
	return nil, fmt.Errorf("unknown --kind %q: use rpi4, rpi5 or mixed", kind)
}

func printResults(w io.Writer, results []*pisim.Result, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	case "table":
		for _, r := range results {
			fmt.Fprintln(w, r.String())
		}
		s := pisim.Summarize(results)
		fmt.Fprintln(w, summaryLine(s))
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table or json", output)
}

func summaryLine(s pisim.Summary) string {
	return fmt.Sprintf("%d of %d Pis loaded their kernel; median boot %s, slowest %s; %.1f MiB over TFTP and HTTP",
		s.Booted, s.Pis, s.MedianDur.Round(time.Millisecond), s.Slowest.Round(time.Millisecond), float64(s.Bytes)/(1<<20))
}
