// Command racklet-agent is the node agent a Racklet node's initramfs runs.
// `racklet-agent attest` measures the booted kernel, initramfs, command line
// and root hash into the HAT, proves them to racklet-boot with a HAT quote and
// writes the secrets racklet-boot releases (each opened by the HAT). Other
// subcommands drive the HAT's A/B attempt counter and power cycle.
//
// Run as PID 1 (or as /init), it is the initramfs's init and runs the node
// boot flow (agent.RunInit). `racklet-agent health` is the booted OS's
// health report (the image's racklet-health.service); `racklet-agent
// kube-join` its Kubernetes join (racklet-kube-join.service).
//
//	racklet-agent attest --hat unix:/tmp/hat.sock --server http://10.0.0.2 --node pi-01 \
//	    --kernel /boot/kernel8.img --initrd /boot/initramfs --cmdline /boot/cmdline.txt \
//	    --roothash 3f1c… --server-key /var/lib/racklet/server.pub --secrets-dir /run/racklet
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/internal/cli"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/kube/nodejoin"
	"github.com/racklet/racklet-boot/serverkey"
	"github.com/spf13/cobra"
)

func main() {
	if os.Getpid() == 1 || os.Args[0] == "/init" {
		agent.RunInit(context.Background()) // never returns: switch_root, reboot, halt or a shell
	}
	cli.Main("racklet-agent", newRoot())
}

type global struct {
	hat     string
	timeout time.Duration
	log     cli.LogFlags
}

func (g *global) logger() *slog.Logger { return g.log.Logger() }

// withHAT opens the HAT link, runs fn and closes it.
func (g *global) withHAT(cmd *cobra.Command, fn func(ctx context.Context, c *hatlink.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
	defer cancel()
	rw, err := hatlink.Dial(ctx, g.hat)
	if err != nil {
		return err
	}
	l := hatlink.NewLink(rw)
	l.Logger = g.logger()
	defer l.Close()
	c, err := hatlink.NewClient(ctx, l)
	if err != nil {
		return err
	}
	return fn(ctx, c)
}

func newRoot() *cobra.Command {
	g := &global{log: cli.LogFlags{Level: "warn"}}
	root := &cobra.Command{
		Use:   "racklet-agent",
		Short: "Racklet node agent: measured boot, attestation and A/B state via the HAT",
		Long: "racklet-agent runs on a Racklet node: it measures the boot into the node's HAT (RP2040),\n" +
			"attests to racklet-boot and keeps the HAT's A/B attempt counter. boot-attempt exits 2\n" +
			"when the slot is out of attempts (fall back to the committed one).",
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.hat, "hat", "/dev/ttyAMA0", "the HAT: a serial device, unix:PATH or tcp:HOST:PORT")
	pf.DurationVar(&g.timeout, "timeout", 2*time.Minute, "give up after this long")
	g.log.Register(root) // --log-level debug logs link retransmissions and progress
	root.AddCommand(attestCmd(g), identityCmd(g), bootCmd(g, "boot-state"), bootCmd(g, "boot-attempt"),
		bootCmd(g, "boot-commit"), powerCycleCmd(g), healthCmd(g), kubeJoinCmd(g), diskCmd(g))
	return root
}

func attestCmd(g *global) *cobra.Command {
	var server, node, kernel, initrd, cmdline, roothash, out, keyFile string
	var o cli.Output
	cmd := &cobra.Command{
		Use:   "attest --server URL --node NAME --kernel FILE --initrd FILE --cmdline FILE|STRING --roothash HEX [--server-key PUB] [--secrets-dir DIR]",
		Short: "Measure the boot, prove it to racklet-boot and receive this node's secrets",
		Long: "Measure the booted kernel, initramfs, command line and root hash into the HAT, prove them\n" +
			"to racklet-boot with a HAT quote and receive the secrets it releases. A refusal (another\n" +
			"image's measurements, an unknown HAT key) releases nothing and exits 77.",
		Example: `  racklet-agent attest --hat unix:/tmp/hat.sock --server http://10.0.0.2 --node pi-01 \
      --kernel kernel8.img --initrd initramfs8 --cmdline cmdline.txt --roothash 3f1c… --server-key server.pub --secrets-dir /run/racklet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Check(); err != nil {
				return err
			}
			for flag, v := range map[string]string{"server": server, "node": node, "kernel": kernel, "initrd": initrd, "cmdline": cmdline, "roothash": roothash} {
				if v == "" {
					return cli.Usagef("--%s is required", flag)
				}
			}
			line := cmdline
			if b, err := os.ReadFile(cmdline); err == nil {
				line = string(b)
			}
			m, err := attest.MeasureFiles(kernel, initrd, line, roothash)
			if err != nil {
				return err
			}
			key, err := serverkey.ReadPublic(keyFile)
			if err != nil {
				return err
			}
			return g.withHAT(cmd, func(ctx context.Context, c *hatlink.Client) error {
				res, err := agent.Attest(ctx, c, agent.Options{Node: node, Server: server, Measurements: m, Logger: g.logger(), ServerKey: key})
				var ref *agent.Refused
				if errors.As(err, &ref) {
					return cli.Refused(fmt.Errorf("%s (nothing released)", ref.Error()))
				}
				if err != nil {
					return err
				}
				return report(cmd.OutOrStdout(), res, out, o)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "racklet-boot base URL, e.g. http://10.0.0.2")
	f.StringVar(&node, "node", "", "this node's name in the rack config")
	f.StringVar(&kernel, "kernel", "", "the kernel image that was booted")
	f.StringVar(&initrd, "initrd", "", "the initramfs that was booted")
	// Not /proc/cmdline by default: the Pi firmware prepends its own
	// parameters there, so it never equals the image's cmdline.txt.
	f.StringVar(&cmdline, "cmdline", "", "kernel command line as the image defines it (cmdline.txt), or a file holding it")
	f.StringVar(&roothash, "roothash", "", "dm-verity root hash of the root filesystem, hex")
	f.StringVar(&out, "secrets-dir", "", "write each released secret to DIR/NAME (mode 0600)")
	f.StringVar(&out, "out", "", "old spelling of --secrets-dir")
	_ = f.MarkDeprecated("out", "use --secrets-dir (-o/--output is the output format, as in every command)")
	f.StringVar(&keyFile, "server-key", bootparams.ServerKeyFile, "racklet-boot's answer-signing public key (its data directory's server.pub): answers not signed under it are refused")
	o.Register(cmd)
	return cmd
}

// attested is what attest prints with -o json|yaml (secrets by name, never their bytes).
type attested struct {
	BootCounter uint64         `json:"bootCounter"`
	Image       string         `json:"image"`
	Secrets     []secretDigest `json:"secrets"`
}

type secretDigest struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
	File   string `json:"file,omitempty"`
}

func report(w io.Writer, res agent.Result, out string, o cli.Output) error {
	names := make([]string, 0, len(res.Secrets))
	for n := range res.Secrets {
		names = append(names, n)
	}
	sort.Strings(names)
	if o.Format != "table" && o.Format != "text" && o.Format != "" {
		v := attested{BootCounter: res.BootCounter, Image: res.Image}
		for _, n := range names {
			sum := sha256.Sum256(res.Secrets[n])
			sd := secretDigest{Name: n, Size: len(res.Secrets[n]), SHA256: hex.EncodeToString(sum[:])}
			if out != "" {
				sd.File = filepath.Join(out, n)
			}
			v.Secrets = append(v.Secrets, sd)
		}
		if err := writeSecrets(res, names, out); err != nil {
			return err
		}
		return o.Write(w, v, nil)
	}
	fmt.Fprintf(w, "attestation accepted: boot %d, image %s, %d secrets released\n", res.BootCounter, orNone(res.Image), len(names))
	if out != "" {
		if err := os.MkdirAll(out, 0o700); err != nil {
			return fmt.Errorf("secrets directory: %w", err)
		}
	}
	for _, n := range names {
		sum := sha256.Sum256(res.Secrets[n])
		line := fmt.Sprintf("  %-12s %4d bytes  sha256:%s…", n, len(res.Secrets[n]), hex.EncodeToString(sum[:6]))
		if out != "" {
			p := filepath.Join(out, n)
			if err := os.WriteFile(p, res.Secrets[n], 0o600); err != nil {
				return fmt.Errorf("write secret: %w", err)
			}
			line += "  → " + p
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

// writeSecrets writes each secret to out/NAME (mode 0600) when out is set.
func writeSecrets(res agent.Result, names []string, out string) error {
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o700); err != nil {
		return fmt.Errorf("secrets directory: %w", err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(out, n), res.Secrets[n], 0o600); err != nil {
			return fmt.Errorf("write secret: %w", err)
		}
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(unnamed)"
	}
	return s
}

// identity is the HAT's identity as identity prints it.
type identity struct {
	Key      string `json:"key"`
	Serial   string `json:"serial"`
	Firmware string `json:"firmware"`
	Protocol int    `json:"protocol"`
}

func identityCmd(g *global) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:     "identity",
		Short:   "Print the HAT's key (for pre-provisioning in the rack config), serial and firmware",
		Example: "  racklet-agent identity --hat unix:/tmp/hat.sock\n  racklet-agent identity --hat /dev/ttyAMA0 -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			return g.withHAT(cmd, func(ctx context.Context, c *hatlink.Client) error {
				id, err := c.Identity(ctx)
				if err != nil {
					return err
				}
				v := identity{Key: hatlink.EncodeKey(id.SignKey), Serial: id.Serial,
					Firmware: fmt.Sprintf("%d.%d.%d", id.Firmware>>16, id.Firmware>>8&0xFF, id.Firmware&0xFF), Protocol: int(c.Version())}
				return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "key:      %s\nserial:   %s\nfirmware: %s\nprotocol: %d\n", v.Key, v.Serial, v.Firmware, v.Protocol)
					return err
				})
			})
		},
	}
	out.Register(cmd)
	return cmd
}

func parseSlot(s string) (byte, error) {
	switch strings.ToUpper(s) {
	case "A", "0":
		return hatlink.SlotA, nil
	case "B", "1":
		return hatlink.SlotB, nil
	}
	return 0, fmt.Errorf("slot %q: want A or B", s)
}

func slotName(s byte) string { return string(rune('A' + s)) }

// bootState is the HAT's A/B state as the boot-* commands print it.
type bootState struct {
	Committed string         `json:"committed"`
	Next      string         `json:"next"`
	Attempts  map[string]int `json:"attempts"`
	Limit     int            `json:"limit"`
	Boot      uint64         `json:"boot"`
	Allowed   bool           `json:"allowed"`
}

func bootCmd(g *global, name string) *cobra.Command {
	use, short, args := name, "Print the HAT's A/B state", cobra.NoArgs
	switch name {
	case "boot-attempt":
		use, short, args = name+" A|B", "Count a boot attempt of a slot; exits 2 when the slot is out of attempts (fall back)", cobra.ExactArgs(1)
	case "boot-commit":
		use, short, args = name+" A|B", "Mark a slot good after its health checks passed", cobra.ExactArgs(1)
	}
	var out cli.Output
	cmd := &cobra.Command{
		Use: use, Short: short, Args: args,
		Example: "  racklet-agent " + strings.TrimSuffix(use, " A|B") + map[bool]string{true: " B", false: ""}[use != name] + " --hat /dev/ttyAMA0",
		RunE: func(cmd *cobra.Command, a []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			return g.withHAT(cmd, func(ctx context.Context, c *hatlink.Client) error {
				var (
					s   hatlink.BootState
					err error
				)
				switch name {
				case "boot-state":
					s, err = c.BootState(ctx)
				default:
					slot, perr := parseSlot(a[0])
					if perr != nil {
						return perr
					}
					if name == "boot-attempt" {
						s, err = c.BootAttempt(ctx, slot)
					} else {
						s, err = c.BootCommit(ctx, slot)
					}
				}
				if err != nil {
					return err
				}
				v := bootState{Committed: slotName(s.Committed), Next: slotName(s.Next),
					Attempts: map[string]int{"A": int(s.Attempts[0]), "B": int(s.Attempts[1])}, Limit: int(s.Limit), Boot: s.Counter, Allowed: s.Allowed}
				err = out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "committed: %s\nnext:      %s\nattempts:  A=%d B=%d (limit %d)\nboot:      %d\n",
						v.Committed, v.Next, v.Attempts["A"], v.Attempts["B"], v.Limit, v.Boot)
					return err
				})
				if err != nil {
					return err
				}
				if name == "boot-attempt" && !s.Allowed {
					return &cli.ExitError{Code: 2, Err: fmt.Errorf("out of attempts: fall back to %s", slotName(s.Committed))}
				}
				return nil
			})
		},
	}
	out.Register(cmd)
	return cmd
}

func powerCycleCmd(g *global) *cobra.Command {
	var out cli.Output
	cmd := &cobra.Command{
		Use:     "power-cycle",
		Short:   "Have the HAT power-cycle the Pi (registers reset, boot counter +1)",
		Example: "  racklet-agent power-cycle --hat /dev/ttyAMA0",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.Check(); err != nil {
				return err
			}
			return g.withHAT(cmd, func(ctx context.Context, c *hatlink.Client) error {
				n, err := c.PowerCycle(ctx)
				if err != nil {
					return err
				}
				v := struct {
					Boot uint64 `json:"boot"`
				}{n}
				return out.Write(cmd.OutOrStdout(), v, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "power cycled: boot %d\n", v.Boot)
					return err
				})
			})
		},
	}
	out.Register(cmd)
	return cmd
}

func healthCmd(g *global) *cobra.Command {
	var handover, failed string
	var attempts int
	cmd := &cobra.Command{
		Use:   "health [--failed REASON]",
		Short: "Report this booted node healthy to racklet-boot (run once the default target is reached)",
		Long: "Reports the boot the initramfs agent handed over healthy; racklet-boot then commits a trial\n" +
			"image, and this commits its slot on the HAT. --failed REASON reports the image's own health\n" +
			"check failed instead: the trial's attempt is used and racklet-boot power-cycles the node.",
		Example: "  racklet-agent health                     # what racklet-health.service runs\n  racklet-agent health --failed 'kubelet did not start'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), g.timeout)
			defer cancel()
			l := &agent.Linux{Log: g.logger()}
			err := agent.Health(ctx, agent.HealthOptions{Handover: handover, Attempts: attempts, Wait: 3 * time.Second, Failed: failed,
				OpenHAT: l.OpenHAT, Logger: g.logger()})
			if err != nil {
				return err
			}
			if failed != "" {
				fmt.Fprintln(cmd.OutOrStdout(), "racklet-agent: reported failed:", failed)
				return nil
			}
			fmt.Fprintln(cmd.OutOrStdout(), "racklet-agent: reported healthy")
			return nil
		},
	}
	cmd.Flags().StringVar(&handover, "handover", bootparams.HandoverFile, "the boot hand-over file the initramfs agent wrote")
	cmd.Flags().IntVar(&attempts, "attempts", 10, "tries before giving up")
	cmd.Flags().StringVar(&failed, "failed", "", "report the image's health check failed, with this reason")
	return cmd
}

func kubeJoinCmd(g *global) *cobra.Command {
	var handover, secret, kubeadm, node string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "kube-join",
		Short: "Join the Kubernetes cluster with the facts released after attestation, and report the result",
		Long: "Runs kubeadm join once with the join facts (API endpoint, bootstrap token, CA hashes) the\n" +
			"initramfs agent kept on /run after racklet-boot released them to this attested boot, removes\n" +
			"them, and reports the result to racklet-boot as the kubernetes stage of the node's timeline.\n" +
			"The node registers under its rack name. What racklet-kube-join.service runs.",
		Example: "  racklet-agent kube-join          # what racklet-kube-join.service runs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+time.Minute)
			defer cancel()
			summary, err := agent.KubeJoin(ctx, agent.KubeJoinOptions{Handover: handover, Attempts: 10, Wait: 3 * time.Second,
				Join: nodejoin.Options{Secret: secret, Kubeadm: kubeadm, Node: node, Timeout: timeout, Output: cmd.ErrOrStderr()}})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "racklet-agent:", summary)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&handover, "handover", bootparams.HandoverFile, "the boot hand-over file the initramfs agent wrote")
	f.StringVar(&secret, "secret", nodejoin.SecretFile, "the released join facts the initramfs agent kept")
	f.StringVar(&kubeadm, "kubeadm", "/usr/bin/kubeadm", "the kubeadm command")
	f.StringVar(&node, "node-name", "", "register the node under this name (default: its name in the rack, from the hand-over)")
	f.DurationVar(&timeout, "join-timeout", 10*time.Minute, "give kubeadm join this long")
	return cmd
}
