// Command racklet-hat-sim runs a simulated Racklet HAT (the RP2040 beside a
// Raspberry Pi) that speaks the hatlink protocol over a pseudo-terminal, a
// Unix socket or TCP. Its keys, boot counter, A/B state, sealed secrets and
// the node's power state live in a state file; its measurement registers
// reset when it starts and when it power-cycles the node, as the real one's do.
//
// As the node's board-management controller it also connects to
// racklet-boot (--bmc) and, with a QEMU command after "--", powers a QEMU
// node through QMP and captures its console UART:
//
//	racklet-hat-sim --state hat.json --listen unix:/tmp/hat.sock
//	racklet-hat-sim --state hat.json --listen pty      # prints the device path
//	racklet-hat-sim --state hat.json --bmc tcp:10.0.0.2:7070 -- qemu-system-x86_64 -m 512 -nic ...
package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/internal/cli"
)

func main() { cli.Main("racklet-hat-sim", newCommand()) }

func newCommand() *cobra.Command {
	var (
		statePath, listen, serial, bmc string
		limit                          uint8
		logFlags                       cli.LogFlags
	)
	cmd := &cobra.Command{
		Use:   "racklet-hat-sim --state FILE [--listen unix:PATH|tcp:HOST:PORT|pty] [--bmc tcp:HOST:PORT] [-- QEMU COMMAND...]",
		Short: "Run a simulated Racklet HAT (RP2040) for nodes and tests without hardware",
		Example: "  racklet-hat-sim --state hat.json --listen unix:/tmp/hat.sock\n" +
			"  racklet-hat-sim --state hat.json --serial 5b154510 --bmc tcp:10.0.0.2:7070 -- qemu-system-x86_64 -m 512 -display none -nic tap,ifname=tap0",
		RunE: func(cmd *cobra.Command, args []string) error {
			if statePath == "" {
				return cli.Usagef("--state is required: the file that holds the simulated HAT's keys and counters")
			}
			if listen == "" && bmc == "" {
				listen = "pty"
			}
			ctx := cmd.Context()
			log := logFlags.Logger()
			dev, err := hatsim.Open(statePath, hatsim.Options{Serial: serial, AttemptLimit: limit, Logger: log})
			if err != nil {
				return err
			}
			id := dev.Identity()
			if len(args) > 0 {
				q := &hatsim.QEMU{Command: args, Dir: strings.TrimSuffix(statePath, filepath.Ext(statePath)) + ".node",
					Console: dev.Console(), Log: log.With("component", "node")}
				if err := dev.Attach(ctx, q); err != nil {
					return err
				}
			}
			g, ctx := errgroup.WithContext(ctx)
			if listen != "" {
				g.Go(func() error {
					return hatsim.ListenAndServe(ctx, listen, dev, log, func(addr string) {
						// The address goes to stdout alone so scripts can read it.
						fmt.Fprintln(cmd.OutOrStdout(), addr)
						log.Info("hat simulator ready", "listen", addr, "serial", id.Serial,
							"key", hatlink.EncodeKey(id.SignKey))
					})
				})
			}
			if bmc != "" {
				g.Go(func() error { return hatsim.DialAndServe(ctx, bmc, dev.BMC(), log) })
			}
			return g.Wait()
		},
	}
	f := cmd.Flags()
	f.StringVar(&statePath, "state", "", "state file (created with fresh keys if missing)")
	f.StringVar(&listen, "listen", "", "the Pi's port: unix:PATH, tcp:HOST:PORT or pty (default pty unless --bmc is given)")
	f.StringVar(&bmc, "bmc", "", "racklet-boot's board-management listener to connect to: tcp:HOST:PORT or unix:PATH")
	f.StringVar(&serial, "serial", "", "serial for a new state file: the Pi's serial (default: random)")
	f.Uint8Var(&limit, "attempt-limit", hatsim.DefaultAttemptLimit, "boot attempts per trial slot, for a new state file")
	logFlags.Register(cmd) // --log-level debug logs every retransmission and connection
	return cmd
}
