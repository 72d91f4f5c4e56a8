package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/pisim"
)

func newSimulateCmd(g *globals) *cobra.Command {
	var iface, kind, prefix string
	var nodes int
	var seed uint64
	var r pisim.Rack
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Play N Raspberry Pi bootloaders against a running server",
		Long: "Boot N simulated Raspberry Pi 4/5 bootloaders through DHCP and TFTP, each on its own\n" +
			"macvlan of --interface with its own MAC, serial and address (needs root), and print\n" +
			"each node's boot timeline. The same --seed always gives the same serials and MACs.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			mode, ok := map[string]pisim.PrefixMode{"serial": pisim.PrefixSerial, "mac": pisim.PrefixMAC}[prefix]
			if !ok {
				return fmt.Errorf("unknown --prefix %q: use serial or mac", prefix)
			}
			pis, err := pisim.RackOf(nodes, kind, seed)
			if err != nil {
				return err
			}
			for _, p := range pis {
				p.Prefix = mode
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
	cmd.Flags().StringVar(&prefix, "prefix", "serial", "TFTP prefix mode: serial or mac")
	out.Register(cmd)
	_ = cmd.MarkFlagRequired("interface")
	return cmd
}
