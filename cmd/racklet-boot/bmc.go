package main

import (
	"fmt"
	"io"
	"os"
	"os/user"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/bmc"
	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/internal/adminclient"
	"github.com/racklet/racklet-boot/internal/cli"
)

// adminFlags are how a command reaches a running racklet-boot's operator
// API: its unix socket in --data-dir, or --server URL with --token-file.
type adminFlags struct{ adminclient.Flags }

func (a *adminFlags) register(cmd *cobra.Command) { a.Register(cmd) }

func (a *adminFlags) client() (*server.AdminClient, error) {
	c, err := a.Client()
	if err != nil {
		return nil, err
	}
	return server.NewAdminClient(c), nil
}

// who names the operator for the node's timeline.
func who() string {
	if u, err := user.Current(); err == nil {
		host, _ := os.Hostname()
		return u.Username + "@" + host
	}
	return "operator"
}

func newPowerCmd() *cobra.Command {
	var a adminFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "power on|off|cycle NODE...",
		Short: "Switch nodes on or off, or power-cycle them, through their HATs",
		Long: "on and off become the node's wanted power (recorded, and re-applied whenever its HAT\n" +
			"reconnects) until the rack config's power: for the node changes; cycle power-cycles a node\n" +
			"that is on. Each change is in the node's timeline with who asked.",
		Example:   "  racklet-boot power off pi-03 pi-04\n  racklet-boot power cycle pi-07 --server http://10.0.0.2 --token-file ~/racklet.token",
		Args:      cobra.MinimumNArgs(2),
		ValidArgs: []string{"on", "off", "cycle"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			action := args[0]
			c, err := a.client()
			if err != nil {
				return err
			}
			var sts []bmc.Status
			for _, node := range args[1:] {
				st, err := c.Power(cmd.Context(), node, action, who())
				if err != nil {
					return err
				}
				sts = append(sts, st)
			}
			return out.Write(cmd.OutOrStdout(), sts, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NODE\tHAT\tPOWER\tBOOT\tWANTED\tBY\tNOTE")
				for _, s := range sts {
					link, power := "connected", "off"
					if !s.Connected {
						link, power = "not connected", "?"
					} else if s.On {
						power = "on"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Node, link, power, s.Boot, onOff(s.Want), s.WantBy, s.Note)
				}
				return tw.Flush()
			})
		},
	}
	a.register(cmd)
	out.Register(cmd)
	return cmd
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func newConsoleCmd() *cobra.Command {
	var a adminFlags
	var follow bool
	var boot uint64
	cmd := &cobra.Command{
		Use:   "console NODE",
		Short: "Show a node's serial console as its HAT captured it",
		Long: "Prints one boot's console (the newest unless --boot N, the HAT's boot counter, as the\n" +
			"timeline's console references name it); --follow keeps printing new output.",
		Example: "  racklet-boot console pi-03 --follow\n  racklet-boot console pi-03 --boot 17",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return c.Console(cmd.Context(), cmd.OutOrStdout(), args[0], boot, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new console output")
	cmd.Flags().Uint64Var(&boot, "boot", 0, "which boot (the HAT's boot counter; default the newest)")
	a.register(cmd)
	return cmd
}

func newPendingCmd() *cobra.Command {
	var a adminFlags
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "pending",
		Short: "List machines and HAT keys waiting for approval",
		Long: "Lists machines the config does not name whose HATs connected (unknownMachines: discover) and\n" +
			"HAT keys asking to be a config node's (enrolment: approve, or a second key under tofu). Two keys\n" +
			"for one node are a conflict: approve the one whose fingerprint you checked on the machine\n" +
			"(racklet-agent identity on its console), by the whole fingerprint.",
		Example: "  racklet-boot nodes pending\n  racklet-boot nodes pending --server http://10.0.0.2 --token-file ~/racklet.token -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			list, err := c.Pending(cmd.Context())
			if err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), list, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SERIAL\tMAC\tKIND\tFOR NODE\tHAT KEY FINGERPRINT\tLAST SEEN")
				for _, p := range list {
					node := dash(p.Node)
					if p.Conflict {
						node += " (CONFLICT: several keys)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Serial, dash(p.MAC), dash(p.Kind), node, p.Fingerprint, p.LastSeen.Format("2006-01-02 15:04:05"))
				}
				return tw.Flush()
			})
		},
	}
	a.register(cmd)
	out.Register(cmd)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func newApproveCmd() *cobra.Command {
	var a adminFlags
	var as, kind string
	var out cli.Output
	cmd := &cobra.Command{
		Use:   "approve SERIAL|MAC|FINGERPRINT [--as NAME]",
		Short: "Admit a pending machine as a node, or trust a pending HAT key for its config node",
		Long: "A machine the config does not name becomes node NAME (--as), written to the approved-nodes\n" +
			"file in the data directory. A key asking to be a config node's is enrolled for that node\n" +
			"(--as may repeat the name). The answer shows the key and its fingerprint: compare it with\n" +
			"racklet-agent identity on the machine.",
		Example: "  racklet-boot nodes pending\n" +
			"  racklet-boot nodes approve 5b154517 --as pi-17\n" +
			"  racklet-boot nodes approve SHA256:3q2+7w…   # a config node's key, by its whole fingerprint",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Approve(cmd.Context(), server.ApproveRequest{Ref: args[0], As: as, Kind: kind, By: who()})
			if err != nil {
				return err
			}
			return out.Write(cmd.OutOrStdout(), r, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "approved %s as %s\nHAT key %s\nfingerprint %s\nwritten to %s\n", r.Serial, r.Node, r.Key, r.Fingerprint, r.File)
				return err
			})
		},
	}
	out.Register(cmd)
	cmd.Flags().StringVar(&as, "as", "", "the node's name (a DNS label, e.g. pi-17); needed for a machine the config does not name")
	cmd.Flags().StringVar(&kind, "kind", "", "the node's kind (default: as DHCP classified it, else rpi4)")
	a.register(cmd)
	return cmd
}
