package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/store"
)

// newStateCmd is `racklet-boot state check|repair`: inspect and rebuild
// the state database (leases, nodes, events) of a stopped server.
func newStateCmd() *cobra.Command {
	var dataDir, output string
	var wait time.Duration
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
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := store.Check(path(), wait)
			if rep != nil {
				if perr := printReport(cmd.OutOrStdout(), rep, output); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	check.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	repair := &cobra.Command{
		Use:   "repair",
		Short: "Copy every readable record of state.db into a new file; the old one is kept beside it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := store.Repair(path(), wait)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "repaired %s: kept %d leases, %d nodes, %d events\n", path(), rep.Kept["leases"], rep.Kept["nodes"], rep.Kept["events"])
			for _, d := range rep.Dropped {
				fmt.Fprintf(w, "  lost: %s\n", d)
			}
			fmt.Fprintf(w, "the previous file is %s\n", rep.Old)
			return nil
		},
	}
	cmd.AddCommand(check, repair)
	return cmd
}

func printReport(w io.Writer, rep *store.Report, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "text", "":
	default:
		return fmt.Errorf("unknown output format %q (want text or json)", output)
	}
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
