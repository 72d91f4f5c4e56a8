package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/boot/dhcp"
	httpboot "github.com/racklet/racklet-boot/boot/http"
	"github.com/racklet/racklet-boot/boot/ra"
	"github.com/racklet/racklet-boot/boot/resolve"
	"github.com/racklet/racklet-boot/boot/tftp"
	"github.com/racklet/racklet-boot/imagestore"
	"github.com/racklet/racklet-boot/rack"
	"github.com/racklet/racklet-boot/store"
)

// dbName is the state file inside the data directory.
const dbName = store.DefaultFileName

type serveOptions struct {
	config  string
	dataDir string
	tftp    string
	http    string
}

func newServeCmd(g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve DHCP, TFTP and HTTP to the rack from a rack config",
		Long: "Serve DHCP (full or proxy), TFTP and HTTP on the rack LAN. The config is reloaded\n" +
			"when the file changes and on SIGHUP; a broken new config is rejected and the old one keeps serving.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), g.logger(), o)
		},
	}
	cmd.Flags().StringVarP(&o.config, "config", "c", "rack.yaml", "rack config file")
	cmd.Flags().StringVar(&o.dataDir, "data-dir", "", "state directory (default: server.dataDir from the config)")
	cmd.Flags().StringVar(&o.tftp, "tftp-listen", "", "TFTP listen address (default :server.tftpPort)")
	cmd.Flags().StringVar(&o.http, "http-listen", "", "HTTP listen address (default :server.httpPort)")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	return cmd
}

func serve(ctx context.Context, log *slog.Logger, o *serveOptions) error {
	cfg, err := rack.Load(o.config)
	if err != nil {
		return err
	}
	dataDir := o.dataDir
	if dataDir == "" {
		dataDir = cfg.Server.DataDir
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	st, err := store.OpenBolt(filepath.Join(dataDir, dbName))
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var live atomic.Pointer[rack.Config]
	live.Store(cfg)
	imgOpts := imagestore.OptionsFor(cfg)
	imgOpts.Log = log.With("component", "images")
	imgs, err := imagestore.Open(filepath.Join(dataDir, "images"), imgOpts)
	if err != nil {
		return err
	}
	booter := &imagestore.Booter{Store: imgs, Config: live.Load}

	res := resolve.New(cfg, resolve.WithImages(booter))
	res.Log = log.With("component", "resolve")
	res.Clients = &clientLookup{leases: st, arp: resolve.ARPTable{}}

	dh := dhcp.New(dhcpSettings(cfg))
	dh.Log = log.With("component", "dhcp")
	dh.Leases = st
	dh.Events = st

	tf := &tftp.Server{Files: res, Log: log.With("component", "tftp"), Events: st, Metrics: tftp.NewMetrics(reg)}
	enr, sec, err := attest.OpenDataDir(filepath.Join(dataDir, "attest"))
	if err != nil {
		return err
	}
	av := &attest.Verifier{
		Enrollments:     enr,
		Secrets:         sec,
		Events:          st,
		Expected:        &expectedBoot{cfg: &live, res: res, images: booter},
		TrustOnFirstUse: true,
		Logger:          log.With("component", "attest"),
	}
	if err := av.Preprovision(ctx, hatKeys(cfg)); err != nil {
		return err
	}
	hs := &httpboot.Server{Files: res, Nodes: st, Registry: reg, Log: log.With("component", "http"), Events: st,
		Mounts: map[string]http.Handler{attest.PathPrefix: av.Handler()}}

	if err := syncNodes(ctx, st, cfg); err != nil {
		return err
	}
	tftpAddr := o.tftp
	if tftpAddr == "" {
		tftpAddr = ":" + strconv.Itoa(cfg.Server.TFTPPort)
	}
	httpAddr := o.http
	if httpAddr == "" {
		httpAddr = ":" + strconv.Itoa(cfg.Server.HTTPPort)
	}

	log.Info("racklet-boot serving", "config", o.config, "dataDir", dataDir, "interface", cfg.Server.Interface,
		"address", cfg.Server.Address, "dhcp", cfg.DHCP.Mode, "nodes", len(cfg.Nodes), "tftp", tftpAddr, "http", httpAddr)
	g, ctx := errgroup.WithContext(ctx)
	if cfg.DHCP.Mode != rack.DHCPOff {
		g.Go(func() error { return dh.ListenAndServe(ctx, cfg.Server.Interface) })
	}
	g.Go(func() error { return tf.ListenAndServe(ctx, tftpAddr) })
	if cfg.Server.AdvertiseRouter() { // an optimisation for iPXE: a failure is a warning, not a stop
		g.Go(func() error {
			if err := (&ra.Responder{Interface: cfg.Server.Interface, Log: log}).ListenAndServe(ctx); err != nil {
				log.Warn("not answering IPv6 router solicitations; iPXE clients wait ~13 s for IPv6", "err", err)
			}
			return nil
		})
	}
	g.Go(func() error { return hs.ListenAndServe(ctx, httpAddr) })
	g.Go(func() error { prefetchImages(ctx, log, booter, imgs); return nil })
	g.Go(func() error {
		return rack.Watch(ctx, o.config, log.With("component", "config"), func(next *rack.Config) {
			if msg := restartNeeded(cfg, next); msg != "" {
				log.Warn("config change needs a restart to take effect; the rest is applied now", "change", msg)
			}
			dh.Update(dhcpSettings(next))
			res.Update(next)
			live.Store(next)
			go prefetchImages(ctx, log, booter, imgs)
			if err := av.Preprovision(ctx, hatKeys(next)); err != nil {
				log.Error("enroll the HAT keys of the new config", "err", err)
			}
			if err := syncNodes(ctx, st, next); err != nil {
				log.Error("record nodes of the new config", "err", err)
			}
			log.Info("config reloaded", "nodes", len(next.Nodes), "dhcp", next.DHCP.Mode)
		})
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("racklet-boot stopped")
	return err
}

// prefetchImages verifies and fetches every image the config assigns, so a
// node's first TFTP read does not wait for a pull, then removes blobs no
// assigned image uses. A failure (unreachable registry, a refused image)
// skips the clean-up: an image only unreachable for now keeps its blobs.
func prefetchImages(ctx context.Context, log *slog.Logger, b *imagestore.Booter, st *imagestore.Store) {
	keep, err := b.Prefetch(ctx)
	if err != nil {
		log.Warn("not every assigned image is ready; nodes whose image failed get no boot files", "component", "images", "err", err)
		return
	}
	log.Info("assigned images verified and cached", "component", "images", "images", len(keep))
	if n, err := st.GC(ctx, keep); err != nil {
		log.Warn("image cache clean-up failed", "component", "images", "err", err)
	} else if n > 0 {
		log.Info("image cache cleaned", "component", "images", "removed", n)
	}
}

// restartNeeded names the changes a running server cannot apply in place:
// the sockets it listens on.
func restartNeeded(old, next *rack.Config) string {
	switch {
	case old.Server.Interface != next.Server.Interface:
		return "server.interface"
	case old.Server.HTTPPort != next.Server.HTTPPort:
		return "server.httpPort"
	case old.Server.TFTPPort != next.Server.TFTPPort:
		return "server.tftpPort"
	case old.Server.DataDir != next.Server.DataDir:
		return "server.dataDir"
	case (old.DHCP.Mode == rack.DHCPOff) != (next.DHCP.Mode == rack.DHCPOff):
		return "dhcp.mode on/off"
	}
	return ""
}

func dhcpSettings(cfg *rack.Config) dhcp.Settings { return dhcp.SettingsFromRack(cfg) }

// syncNodes records the config's nodes as known, keeping what the server
// already learned of them (addresses, last seen).
func syncNodes(ctx context.Context, st store.Store, cfg *rack.Config) error {
	for _, n := range cfg.Nodes {
		rec, _, err := st.Node(ctx, n.Name)
		if err != nil {
			return err
		}
		rec.Key, rec.Name, rec.Known = n.Name, n.Name, true
		rec.Kind, rec.Serial = string(n.Kind), n.Serial
		if n.MAC != nil {
			rec.MAC = n.MAC.String()
		}
		if err := st.PutNode(ctx, rec); err != nil {
			return fmt.Errorf("record node %s: %w", n.Name, err)
		}
	}
	return nil
}

// clientLookup answers "which MAC is at this address?" for the resolver: from
// the leases racklet-boot handed out or observed, then the kernel's neighbour
// table (proxy mode: the router leased the address, the ARP entry tells us).
type clientLookup struct {
	leases interface {
		Leases(ctx context.Context) ([]store.Lease, error)
	}
	arp resolve.Clients
}

func (c *clientLookup) MACForAddr(ctx context.Context, a netip.Addr) (net.HardwareAddr, bool) {
	if ls, err := c.leases.Leases(ctx); err == nil {
		for _, l := range ls {
			if l.Addr == a && l.State == "bound" {
				if mac, err := net.ParseMAC(l.MAC); err == nil {
					return mac, true
				}
			}
		}
	}
	return c.arp.MACForAddr(ctx, a)
}
