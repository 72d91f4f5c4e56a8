// Package lab builds a throwaway rack LAN out of network namespaces (a
// switch, the server, the rack and, in proxy mode, a dnsmasq router),
// serves it with an in-process racklet-boot (boot/server, its sockets in
// the server namespace) from an embedded example config, boots a rack of
// simulated Pis through the firmware's real sequence (pisim) and removes
// everything. `racklet-boot lab` prints its Report; tests call Run.
package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"text/template"
	"time"

	"github.com/racklet/racklet-boot/boot/server"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/pisim"
	"github.com/racklet/racklet-boot/rack"
)

// Addresses of the lab LAN.
const (
	ServerAddr = "10.42.0.2" // racklet-boot
	RouterAddr = "10.42.0.1" // dnsmasq, in proxy mode
)

// Options tune a lab run. The zero value boots six Pis in full mode.
type Options struct {
	Nodes      int    // simulated Pis, alternating Pi 4 and Pi 5; 0 means 6
	Seed       uint64 // seed for serials and MACs; the same seed, the same rack
	DHCP       string // racklet-boot's DHCP mode: "full" ("" too) or "proxy" beside a dnsmasq router
	KernelSize int    // bytes of the generated kernel (the initramfs is half); 0 means 8 MiB
	// Keep keeps the lab's files (config, server log, state) in Report.Dir.
	Keep bool
	// Progress receives one line per step of the set-up; nil discards.
	Progress io.Writer
	// Timeout bounds the rack's boot; 0 means 5 minutes.
	Timeout time.Duration
}

// Report is what a lab run saw.
type Report struct {
	Dir     string          // the lab's files (removed unless Options.Keep)
	Names   []string        // node names, in the order of Results
	Results []*pisim.Result // each simulated Pi's boot
	Summary pisim.Summary
	Took    time.Duration       // from the first power-on to the last Pi done
	Nodes   []server.NodeStatus // the server's view of the rack afterwards
	Server  string              // the tail of the server's log when a Pi failed
}

// configTemplate is the embedded rack config of the lab, rendered with the
// lab's addresses, boot trees and simulated Pis.
const configTemplate = `apiVersion: racklet.io/v1alpha1
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

// labPi is one simulated Pi as the config names it.
type labPi struct {
	Name   string
	Model  int
	Serial string
}

// renderConfig writes the lab config for pis under dir.
func renderConfig(dir, mode string, pis []*pisim.Pi) ([]byte, []labPi, error) {
	lp := make([]labPi, 0, len(pis))
	for i, p := range pis {
		lp = append(lp, labPi{Name: fmt.Sprintf("pi-%02d", i+1), Model: p.Model, Serial: p.Name()})
	}
	var b bytes.Buffer
	err := template.Must(template.New("lab").Parse(configTemplate)).Execute(&b, map[string]any{"Dir": dir, "Mode": mode, "Pis": lp})
	return b.Bytes(), lp, err
}

func (o *Options) defaults() error {
	if o.Nodes == 0 {
		o.Nodes = 6
	}
	if o.DHCP == "" {
		o.DHCP = "full"
	}
	if o.DHCP != "full" && o.DHCP != "proxy" {
		return fmt.Errorf("dhcp mode %q: use full or proxy", o.DHCP)
	}
	if o.KernelSize == 0 {
		o.KernelSize = 8 << 20
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return nil
}

// Run builds the lab, boots the rack and tears the lab down. It returns a
// Report whenever the rack booted, and an error too when a Pi did not load
// its kernel.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := netlab.Available(); err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	pis, err := pisim.RackOf(o.Nodes, "mixed", o.Seed)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "racklet-lab-")
	if err != nil {
		return nil, err
	}
	rep := &Report{Dir: dir}
	if !o.Keep {
		defer os.RemoveAll(dir)
	}
	if err := writeBoot(dir, o.KernelSize); err != nil {
		return nil, err
	}
	text, lp, err := renderConfig(dir, o.DHCP, pis)
	if err != nil {
		return nil, err
	}
	for _, p := range lp {
		rep.Names = append(rep.Names, p.Name)
	}
	cfgPath := filepath.Join(dir, "rack.yaml")
	if err := os.WriteFile(cfgPath, text, 0o644); err != nil {
		return nil, err
	}
	cfg, err := rack.Parse(text, cfgPath)
	if err != nil {
		return nil, fmt.Errorf("the lab's own config: %w", err)
	}

	n, err := newLAN(ctx, o, dir)
	if err != nil {
		return nil, err
	}
	defer n.close()
	fmt.Fprintf(o.Progress, "lab: switch %s, server %s (%s, dhcp %s), rack %s with %d Pis\n", n.sw.NS, n.srv, ServerAddr, o.DHCP, n.rack, len(pis))
	if n.router != nil {
		fmt.Fprintf(o.Progress, "lab: dnsmasq plays the home router at %s (addresses only)\n", RouterAddr)
	}

	srvLog := filepath.Join(dir, "server.log")
	stop, s, err := startServer(ctx, cfg, n, srvLog)
	if err != nil {
		return nil, err
	}
	defer stop()

	start := time.Now()
	simCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &pisim.Rack{Transport: &pisim.MacvlanTransport{Parent: "eth0", NetNS: string(n.rack)}, Pis: pis}
	rep.Results = r.Run(simCtx)
	rep.Took = time.Since(start)
	rep.Summary = pisim.Summarize(rep.Results)
	if rep.Nodes, err = s.Nodes(ctx, 1); err != nil {
		return rep, fmt.Errorf("the server's view of the rack: %w", err)
	}
	if f := rep.Summary.Failed; f > 0 {
		rep.Server = tailFile(srvLog, 3000)
		return rep, fmt.Errorf("%d of %d simulated Pis did not load their kernel; server log:\n%s", f, rep.Summary.Pis, rep.Server)
	}
	return rep, nil
}

// startServer runs racklet-boot in-process with its sockets in the server
// namespace, logging JSON to logPath, and waits until it serves.
func startServer(ctx context.Context, cfg *rack.Config, n *lan, logPath string) (stop func(), s *server.Server, err error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, nil, err
	}
	s, err = server.New(cfg, server.Options{
		Logger:  slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Network: n.srvThread.Do,
	})
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop = func() {
		cancel()
		<-done
		logf.Close()
	}
	select {
	case <-s.Ready():
		return stop, s, nil
	case err := <-done:
		cancel()
		logf.Close()
		return nil, nil, fmt.Errorf("racklet-boot did not start: %w; server log:\n%s", err, tailFile(logPath, 2000))
	case <-time.After(15 * time.Second):
		stop()
		return nil, nil, fmt.Errorf("racklet-boot did not start within 15 s; server log:\n%s", tailFile(logPath, 2000))
	}
}

// lan is the lab's network: a switch, the server and rack namespaces, and
// in proxy mode a router namespace running dnsmasq.
type lan struct {
	sw             *netlab.Switch
	srv, rack, rtr netlab.Namespace
	srvThread      *netlab.Thread
	router         *proc
}

func newLAN(ctx context.Context, o Options, dir string) (n *lan, err error) {
	n = &lan{}
	defer func() {
		if err != nil {
			n.close()
			n = nil
		}
	}()
	id := netlab.Suffix(6)
	if n.sw, err = netlab.NewSwitch(ctx, "rkl-sw-"+id); err != nil {
		return n, err
	}
	if n.srv, err = netlab.AddNamespace(ctx, "rkl-srv-"+id); err != nil {
		return n, err
	}
	if n.rack, err = netlab.AddNamespace(ctx, "rkl-rack-"+id); err != nil {
		return n, err
	}
	if err = n.sw.Attach(ctx, n.srv, "eth0", netip.MustParsePrefix(ServerAddr+"/24")); err != nil {
		return n, err
	}
	if err = n.sw.Attach(ctx, n.rack, "eth0", netip.Prefix{}); err != nil {
		return n, err
	}
	if n.srvThread, err = n.srv.Thread(); err != nil {
		return n, err
	}
	if o.DHCP != "proxy" {
		return n, nil
	}
	if n.rtr, err = netlab.AddNamespace(ctx, "rkl-rtr-"+id); err != nil {
		return n, err
	}
	if err = n.sw.Attach(ctx, n.rtr, "eth0", netip.MustParsePrefix(RouterAddr+"/24")); err != nil {
		return n, err
	}
	n.router, err = startLogged(ctx, n.rtr, filepath.Join(dir, "dnsmasq.log"), "dnsmasq", "--keep-in-foreground",
		"--log-dhcp", "--log-facility=-", "--conf-file=/dev/null", "--port=0", "--bind-interfaces", "--interface=eth0", "--no-ping",
		"--dhcp-range=10.42.0.100,10.42.0.250,255.255.255.0,1h", "--dhcp-leasefile="+filepath.Join(dir, "dnsmasq.leases"))
	if err != nil {
		return n, fmt.Errorf("start the router's dnsmasq (apt-get install dnsmasq-base): %w", err)
	}
	return n, nil
}

// close stops the router and removes every namespace, in reverse order.
func (n *lan) close() {
	if n.router != nil {
		n.router.stop()
	}
	if n.srvThread != nil {
		n.srvThread.Close()
	}
	for _, ns := range []netlab.Namespace{n.rtr, n.rack, n.srv} {
		if ns != "" {
			ns.Delete()
		}
	}
	if n.sw != nil {
		n.sw.Close()
	}
}

// proc is a background process of the lab.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startLogged starts a command in a namespace with its output in a file.
func startLogged(ctx context.Context, ns netlab.Namespace, logPath, name string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: ns.Command(ctx, name, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); f.Close(); close(p.done) }()
	return p, nil
}

// stop interrupts the process and kills it if it lingers.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tailFile returns the last n bytes of a file.
func tailFile(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
