// Command racklet-hat-sim runs a simulated Racklet HAT (the RP2040 beside a
// Raspberry Pi) that speaks the hatlink protocol over a pseudo-terminal, a
// Unix socket or TCP. Its keys, boot counter, A/B state and sealed secrets
// live in a state file; its measurement registers reset when it starts and
// when it is asked to power-cycle, as the real one's do.
//
//	racklet-hat-sim --state hat.json --listen unix:/tmp/hat.sock
//	racklet-hat-sim --state hat.json --listen pty      # prints the device path
package main

import (
	"fmt"

	"github.com/racklet/racklet-boot/internal/cli"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/spf13/cobra"
)

func main() { cli.Main("racklet-hat-sim", newCommand()) }

func newCommand() *cobra.Command {
	var (
		statePath, listen, serial string
		limit                     uint8
		logFlags                  cli.LogFlags
	)
	cmd := &cobra.Command{
		Use:   "racklet-hat-sim --state FILE --listen unix:PATH|tcp:HOST:PORT|pty",
		Short: "Run a simulated Racklet HAT (RP2040) for nodes and tests without hardware",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if statePath == "" {
				return fmt.Errorf("--state is required: the file that holds the simulated HAT's keys and counters")
			}
			ctx := cmd.Context()
			log := logFlags.Logger()
			dev, err := hatsim.Open(statePath, hatsim.Options{Serial: serial, AttemptLimit: limit, Logger: log})
			if err != nil {
				return err
			}
			id := dev.Identity()
			return hatsim.ListenAndServe(ctx, listen, dev, log, func(addr string) {
				// The address goes to stdout alone so scripts can read it.
				fmt.Fprintln(cmd.OutOrStdout(), addr)
				log.Info("hat simulator ready", "addr", addr, "serial", id.Serial,
					"key", hatlink.EncodeKey(id.SignKey))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&statePath, "state", "", "state file (created with fresh keys if missing)")
	f.StringVar(&listen, "listen", "pty", "where to serve: unix:PATH, tcp:HOST:PORT or pty")
	f.StringVar(&serial, "serial", "", "serial for a new state file (default: random)")
	f.Uint8Var(&limit, "attempt-limit", hatsim.DefaultAttemptLimit, "boot attempts per trial slot, for a new state file")
	logFlags.Register(cmd) // --log-level debug logs every retransmission and connection
	return cmd
}
