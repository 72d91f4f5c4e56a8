package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
	"time"

	"github.com/spf13/cobra"

	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/pisim"
)

type labOptions struct {
	nodes    int
	seed     uint64
	mode     string
	kernelMB int
	keep     bool
	output   string
}

func newLabCmd(g *globals) *cobra.Command {
	o := &labOptions{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Boot a rack of simulated Pis on a throwaway LAN, then tear it down",
		Long: "Build a throwaway LAN out of network namespaces (a switch, the server, the rack),\n" +
			"start racklet-boot serve on it with an embedded example config and boot files, boot\n" +
			"--nodes simulated Raspberry Pi 4s and 5s through DHCP and TFTP, print each node's boot\n" +
			"timeline and the server's view of the rack, and remove everything. Needs root.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLab(cmd.Context(), g.logger(), cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().IntVarP(&o.nodes, "nodes", "n", 6, "simulated Pis (alternating Pi 4 and Pi 5)")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "seed for serials and MACs")
	cmd.Flags().StringVar(&o.mode, "dhcp", "full", "racklet-boot's DHCP mode: full, or proxy beside a dnsmasq router")
	cmd.Flags().IntVar(&o.kernelMB, "kernel-mib", 8, "size of the generated kernel image (the initramfs is half of it)")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the lab's files (config, logs, state) and print where")
	cmd.Flags().StringVarP(&o.output, "output", "o", "table", "output format: table or json")
	return cmd
}

// labConfig is the embedded default rack config of the lab, rendered with
// the lab's addresses, boot trees and simulated Pis.
const labConfig = `apiVersion: racklet.io/v1alpha1
kind: Rack
server:
  interface: eth0
  address: 10.42.0.2
  dataDir: {{.Dir}}/data
dhcp:
{{- if eq .Mode "full"}}
  mode: full
  pool: {start: 10.42.0.100, end: 10.42.0.250}
  router: 10.42.0.1
  dns: [10.42.0.1]
  leaseTime: 1h
{{- else}}
  mode: proxy
{{- end}}
unknownMachines: discover
nodes:
{{- range .Pis}}
  - name: {{.Name}}
    kind: rpi{{.Model}}
    serial: "{{.Serial}}"
    boot: {dir: {{$.Dir}}/boot/rpi{{.Model}}}
{{- end}}
`

type labPi struct {
	Name   string
	Model  int
	Serial string
}

func runLab(ctx context.Context, log *slog.Logger, w io.Writer, o *labOptions) error {
	if err := netlab.Available(); err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if o.mode != "full" && o.mode != "proxy" {
		return fmt.Errorf("--dhcp %q: use full or proxy", o.mode)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	pis, err := rackOfPis(o.nodes, "mixed", o.seed)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "racklet-lab-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Fprintf(w, "lab files kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if err := writeLabBoot(dir, o.kernelMB<<20); err != nil {
		return err
	}
	var lp []labPi
	for i, p := range pis {
		lp = append(lp, labPi{Name: fmt.Sprintf("pi-%02d", i+1), Model: p.Model, Serial: p.Name()})
	}
	var cfg bytes.Buffer
	if err := template.Must(template.New("lab").Parse(labConfig)).Execute(&cfg, map[string]any{"Dir": dir, "Mode": o.mode, "Pis": lp}); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "rack.yaml")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o644); err != nil {
		return err
	}

	// The LAN: a switch, the server, the rack, and in proxy mode a router.
	id := netlab.Suffix(6)
	sw, err := netlab.NewSwitch(ctx, "rkl-sw-"+id)
	if err != nil {
		return err
	}
	defer sw.Close()
	srvNS, err := netlab.AddNamespace(ctx, "rkl-srv-"+id)
	if err != nil {
		return err
	}
	defer srvNS.Delete()
	rackNS, err := netlab.AddNamespace(ctx, "rkl-rack-"+id)
	if err != nil {
		return err
	}
	defer rackNS.Delete()
	if err := sw.Attach(ctx, srvNS, "eth0", netip.MustParsePrefix("10.42.0.2/24")); err != nil {
		return err
	}
	if err := sw.Attach(ctx, rackNS, "eth0", netip.Prefix{}); err != nil {
		return err
	}
	fmt.Fprintf(w, "lab: switch %s, server %s (10.42.0.2, dhcp %s), rack %s with %d Pis\n", sw.NS, srvNS, o.mode, rackNS, len(pis))

	if o.mode == "proxy" {
		rtrNS, err := netlab.AddNamespace(ctx, "rkl-rtr-"+id)
		if err != nil {
			return err
		}
		defer rtrNS.Delete()
		if err := sw.Attach(ctx, rtrNS, "eth0", netip.MustParsePrefix("10.42.0.1/24")); err != nil {
			return err
		}
		router, err := startLogged(ctx, rtrNS, filepath.Join(dir, "dnsmasq.log"), "dnsmasq", "--keep-in-foreground",
			"--log-dhcp", "--log-facility=-", "--conf-file=/dev/null", "--port=0", "--bind-interfaces", "--interface=eth0", "--no-ping",
			"--dhcp-range=10.42.0.100,10.42.0.250,255.255.255.0,1h", "--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"))
		if err != nil {
			return fmt.Errorf("start the router's dnsmasq (apt-get install dnsmasq-base): %w", err)
		}
		defer stopProc(router)
		fmt.Fprintln(w, "lab: dnsmasq plays the home router at 10.42.0.1 (addresses only)")
	}

	srvLog := filepath.Join(dir, "server.log")
	server, err := startLogged(ctx, srvNS, srvLog, self, "serve", "--config", cfgPath, "--log-format", "json")
	if err != nil {
		return err
	}
	defer stopProc(server)
	if err := waitHealthy(ctx, srvNS, self, 15*time.Second); err != nil {
		return fmt.Errorf("%w; server log:\n%s", err, tailFile(srvLog, 2000))
	}

	start := time.Now()
	simCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	sim := rackNS.Command(simCtx, self, "simulate", "--interface", "eth0", "--nodes", fmt.Sprint(len(pis)),
		"--seed", fmt.Sprint(o.seed), "-o", "json", "--log-level", "warn")
	var simOut, simErr bytes.Buffer
	sim.Stdout, sim.Stderr = &simOut, &simErr
	simRunErr := sim.Run()
	var results []*pisim.Result
	if err := json.Unmarshal(simOut.Bytes(), &results); err != nil {
		return fmt.Errorf("simulator: %v: %w\n%s", simRunErr, err, simErr.String())
	}
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	for i, r := range results {
		fmt.Fprintf(w, "\n== %s ==\n%s", lp[i].Name, r.String())
	}
	s := pisim.Summarize(results)
	fmt.Fprintf(w, "\n%s (rack booted in %s)\n", summaryLine(s), time.Since(start).Round(time.Millisecond))

	// The server's own view of the rack, through its API.
	nodes := srvNS.Command(ctx, self, "nodes", "--server", "http://10.42.0.2", "--events", "1")
	nodes.Stdout, nodes.Stderr = w, w
	fmt.Fprintln(w, "\nracklet-boot nodes:")
	if err := nodes.Run(); err != nil {
		log.Warn("could not list the server's nodes", "err", err)
	}
	if s.Failed > 0 {
		return fmt.Errorf("%d of %d simulated Pis did not load their kernel; server log:\n%s", s.Failed, s.Pis, tailFile(srvLog, 3000))
	}
	return nil
}

// labProc is a background process of the lab.
type labProc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startLogged starts a command in a namespace with its output in a file.
func startLogged(ctx context.Context, ns netlab.Namespace, logPath, name string, args ...string) (*labProc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &labProc{cmd: ns.Command(ctx, name, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// stopProc interrupts the process and kills it if it lingers.
func stopProc(p *labProc) {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitHealthy polls the server's /healthz from inside its namespace.
func waitHealthy(ctx context.Context, ns netlab.Namespace, self string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if err := ns.Run(ctx, self, "nodes", "--server", "http://10.42.0.2", "-o", "json", "--events", "0"); err == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("racklet-boot did not answer on http://10.42.0.2 within %s", timeout)
}

func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// writeLabBoot writes the lab's Pi 4 and Pi 5 boot trees: firmware-shaped
// files of realistic sizes filled with deterministic bytes, a config.txt
// that loads a kernel and an initramfs, and a per-node cmdline template.
func writeLabBoot(dir string, kernelSize int) error {
	rng := rand.New(rand.NewPCG(42, 42))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := 0; i+8 <= n; i += 8 {
			v := rng.Uint64()
			for j := 0; j < 8; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		return b
	}
	cmdline := "console=serial0,115200 root=/dev/ram0 racklet.node={{.Name}} racklet.server={{.ServerAddr}}\n"
	trees := map[string]map[string][]byte{
		"rpi4": {
			"start4.elf":                blob(2 << 20),
			"fixup4.dat":                blob(5 << 10),
			"config.txt":                []byte("[all]\narm_64bit=1\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\n"),
			"cmdline.txt.tmpl":          []byte(cmdline),
			"bcm2711-rpi-4-b.dtb":       blob(52 << 10),
			"overlays/vc4-kms-v3d.dtbo": blob(4 << 10),
			"kernel8.img":               blob(kernelSize),
			"initramfs8":                blob(kernelSize / 2),
		},
		"rpi5": {
			"config.txt":          []byte("[all]\nkernel=kernel_2712.img\ninitramfs initramfs_2712 followkernel\n"),
			"cmdline.txt.tmpl":    []byte(cmdline),
			"bcm2712-rpi-5-b.dtb": blob(78 << 10),
			"kernel_2712.img":     blob(kernelSize),
			"initramfs_2712":      blob(kernelSize / 2),
		},
	}
	for tree, files := range trees {
		for name, b := range files {
			p := filepath.Join(dir, "boot", tree, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				return fmt.Errorf("write lab boot file: %w", err)
			}
		}
	}
	return nil
}
