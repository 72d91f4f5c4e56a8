package main

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/cli"
	"github.com/racklet/racklet-boot/store"
)

// newStateCmd is `racklet-boot state check|repair`: inspect and rebuild
// the state database (leases, nodes, events) of a stopped server.
func newStateCmd() *cobra.Command {
	var dataDir string
	var wait time.Duration
	var checkOut, repairOut cli.Output
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Check or repair the state database (state.db) of a stopped racklet-boot",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "/var/lib/racklet", "racklet-boot data directory")
	cmd.PersistentFlags().DurationVar(&wait, "wait", 2*time.Second, "how long to wait for a running racklet-boot to release the file")
	path := func() string { return filepath.Join(dataDir, store.DefaultFileName) }
	check := &cobra.Command{
		Use:   "check",
		Short: "Read every page and record of state.db without trusting it; exit non-zero if anything is damaged",
		Example: "  racklet-boot state check --data-dir /var/lib/racklet\n" +
			"  racklet-boot state check -o json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOut.Check(); err != nil {
				return err
			}
			rep, err := store.Check(path(), wait)
			if rep != nil {
				if perr := checkOut.Write(cmd.OutOrStdout(), rep, func(w io.Writer) error { return printReport(w, rep) }); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	checkOut.Register(check)
	repair := &cobra.Command{
		Use:     "repair",
		Short:   "Copy every readable record of state.db into a new file; the old one is kept beside it",
		Example: "  racklet-boot state repair --data-dir /var/lib/racklet",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := repairOut.Check(); err != nil {
				return err
			}
			rep, err := store.Repair(path(), wait)
			if err != nil {
				return err
			}
			return repairOut.Write(cmd.OutOrStdout(), rep, func(w io.Writer) error {
				fmt.Fprintf(w, "repaired %s: kept %d leases, %d nodes, %d events\n", path(), rep.Kept["leases"], rep.Kept["nodes"], rep.Kept["events"])
				for _, d := range rep.Dropped {
					fmt.Fprintf(w, "  lost: %s\n", d)
				}
				_, err := fmt.Fprintf(w, "the previous file is %s\n", rep.Old)
				return err
			})
		},
	}
	repairOut.Register(repair)
	cmd.AddCommand(check, repair)
	return cmd
}

// printReport prints a check's report for people.
func printReport(w io.Writer, rep *store.Report) error {
	fmt.Fprintf(w, "%s: %d pages of %d bytes, transaction %d\n", rep.Path, rep.Pages, rep.PageSize, rep.Txid)
	buckets := make([]string, 0, len(rep.Records))
	for b := range rep.Records {
		buckets = append(buckets, b)
	}
	sort.Strings(buckets)
	for _, b := range buckets {
		fmt.Fprintf(w, "  %-7s %d readable\n", b, rep.Records[b])
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "  damaged: %s\n", p)
	}
	if len(rep.Problems) == 0 {
		fmt.Fprintln(w, "no damage found")
	}
	return nil
}
