// Command storm is the helper of bench/storm/run.sh, the boot-storm
// benchmark: N simulated Raspberry Pis boot at once against racklet-boot
// and against dnsmasq on a LAN made of network namespaces.
//
// It has three subcommands, each a small step the shell script cannot do
// well by itself:
//
//	storm serials -nodes N -seed S
//	    prints "SERIAL MODEL" for the Pis `racklet-boot simulate --kind
//	    mixed --nodes N --seed S` will boot, so the script can list them in
//	    the rack config and lay out dnsmasq's per-serial directories.
//	storm summarize -server NAME -round R -wall-ns W [-rss ...] RESULTS.json
//	    reads the simulator's JSON and prints one JSON line of figures:
//	    finished, time-to-kernel percentiles, timeouts and failures.
//	storm table ROUNDS.jsonl
//	    prints the medians per server and node count, and the ratios
//	    racklet-boot/dnsmasq.
//	storm http-summarize … / storm http-table ROUNDS.jsonl
//	    the same for http.sh, the HTTP-boot storm: per-node boot.img time
//	    percentiles against the 15 s target, racklet-boot/nginx ratios.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "storm:", err)
		os.Exit(1)
	}
}

// errUsage is returned for a missing or unknown subcommand.
var errUsage = errors.New("usage: storm serials|summarize|table|http-summarize|http-table [flags] [file]")

func run(args []string, w io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "serials":
		return runSerials(args[1:], w)
	case "summarize":
		return runSummarize(args[1:], w)
	case "table":
		return runTable(args[1:], w)
	case "http-summarize":
		return runHTTPSummarize(args[1:], w)
	case "http-table":
		return runHTTPTable(args[1:], w)
	}
	return fmt.Errorf("unknown subcommand %q: %w", args[0], errUsage)
}

func runSerials(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("serials", flag.ContinueOnError)
	nodes := fs.Int("nodes", 100, "simulated Pis")
	seed := fs.Uint64("seed", 1, "the simulator's --seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	pis, err := mixedRack(*nodes, *seed)
	if err != nil {
		return err
	}
	for _, p := range pis {
		fmt.Fprintf(w, "%s %d\n", p.Name(), p.Model)
	}
	return nil
}

func runSummarize(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	var r Round
	fs.StringVar(&r.Server, "server", "", "server name for the table")
	fs.IntVar(&r.Round, "round", 0, "round number")
	wall := fs.Int64("wall-ns", 0, "wall time of the whole storm (the simulate command), ns")
	fs.Int64Var(&r.IdleRSSKiB, "idle-rss-kib", 0, "server VmRSS before the storm, KiB")
	fs.Int64Var(&r.PeakRSSKiB, "peak-rss-kib", 0, "server VmHWM after the storm, KiB")
	fs.Float64Var(&r.ServerCPUSec, "server-cpu-s", 0, "server user+system CPU seconds during the storm")
	fs.Float64Var(&r.ClientCPUSec, "client-cpu-s", 0, "simulator user+system CPU seconds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || r.Server == "" {
		return errors.New("summarize: want -server NAME and one results file")
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return fmt.Errorf("open simulator results: %w", err)
	}
	defer f.Close()
	results, err := decodeResults(f)
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	r.summarize(results, time.Duration(*wall))
	return writeRound(w, &r)
}

func runTable(args []string, w io.Writer) error {
	if len(args) != 1 {
		return errors.New("table: want one rounds file (JSON lines from summarize)")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("open rounds: %w", err)
	}
	defer f.Close()
	rounds, err := readRounds(f)
	if err != nil {
		return err
	}
	return writeTable(w, rounds)
}
