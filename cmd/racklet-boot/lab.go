package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/lab"
)

func newLabCmd() *cobra.Command {
	var o lab.Options
	var kernelMiB int
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Boot a rack of simulated Pis on a throwaway LAN, then tear it down",
		Long: "Build a throwaway LAN out of network namespaces (a switch, the server, the rack),\n" +
			"serve it with racklet-boot on an embedded example config and boot files, boot\n" +
			"--nodes simulated Raspberry Pi 4s and 5s through DHCP and TFTP, print each node's boot\n" +
			"timeline and the server's view of the rack, and remove everything. Needs root.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			o.KernelSize, o.Progress = kernelMiB<<20, w
			rep, err := lab.Run(cmd.Context(), o)
			if rep == nil {
				return err
			}
			if o.Keep {
				defer fmt.Fprintf(w, "lab files kept in %s\n", rep.Dir)
			}
			if werr := out.Write(w, rep.Results, func(w io.Writer) error { return rep.WriteTable(w) }); werr != nil {
				return werr
			}
			return err
		},
	}
	cmd.Flags().IntVarP(&o.Nodes, "nodes", "n", 6, "simulated Pis (alternating Pi 4 and Pi 5)")
	cmd.Flags().Uint64Var(&o.Seed, "seed", 1, "seed for serials and MACs")
	cmd.Flags().StringVar(&o.DHCP, "dhcp", "full", "racklet-boot's DHCP mode: full, or proxy beside a dnsmasq router")
	cmd.Flags().IntVar(&kernelMiB, "kernel-mib", 8, "size of the generated kernel image (the initramfs is half of it)")
	cmd.Flags().BoolVar(&o.Keep, "keep", false, "keep the lab's files (config, logs, state) and print where")
	out.Register(cmd)
	return cmd
}
