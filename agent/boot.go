package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/kube/nodejoin"
	"github.com/racklet/racklet-boot/serverkey"
)

// Machine is the node as the boot flow drives it: Linux (NewLinux) on a
// real node, a fake in tests. Every method is one step of DESIGN.md's node
// boot path; the flow decides the order, the reports and what a failure does.
type Machine interface {
	// MountPseudo mounts /proc, /sys, /dev (devtmpfs) and /run and puts the
	// console on the standard streams.
	MountPseudo() error
	// Cmdline returns the kernel command line (/proc/cmdline).
	Cmdline() (string, error)
	// LoadModules loads the initramfs's modules, in its list's order.
	LoadModules(ctx context.Context) error
	// Network brings up a NIC and leases an address with DHCP, announcing
	// itself as racklet-agent.
	Network(ctx context.Context) (Network, error)
	// InitramfsDigest is the sha256 (hex) of the initramfs as the firmware
	// or loader handed it to the kernel.
	InitramfsDigest() (string, error)
	// OpenHAT opens the HAT link named by racklet.hat ("" for the default).
	OpenHAT(ctx context.Context, spec string) (io.ReadWriteCloser, error)
	// MountRoot sets up dm-verity over the fetched files, mounts the
	// squashfs through it read-only and an overlay above it, and returns
	// the new root directory.
	MountRoot(ctx context.Context, r Root) (string, error)
	// SwitchRoot moves the pseudo-filesystems into root, makes it / and
	// executes init. It returns only on failure.
	SwitchRoot(root, init string) error
	// Fail carries out a failure action (bootparams.FailReboot after
	// delay, FailHalt, FailShell). It returns only where the machine cannot
	// do it (tests).
	Fail(action string, delay time.Duration)
}

// Network is the outcome of Machine.Network.
type Network struct {
	Interface string
	MAC       net.HardwareAddr
	Addr      string // the leased address, for messages
	// Server is racklet-boot's base URL from its DHCP offer, "" when no
	// offer carried one.
	Server string
}

// Root is what Machine.MountRoot mounts.
type Root struct {
	Squashfs, Verity string // fetched files
	Params           bootparams.Params
}

// Default paths of the boot flow.
const (
	// RootDir is where root.squashfs and root.verity are fetched to: on
	// /run's tmpfs, which moves into the booted OS at switch_root.
	RootDir = "/run/racklet/root"
	// NewRoot is where the overlay root is mounted before switch_root.
	NewRoot = "/newroot"
	// Init is the real init executed after switch_root.
	Init = "/sbin/init"
)

// BootOptions configure Boot.
type BootOptions struct {
	Machine Machine
	// Console receives the flow's progress and its one line per failure.
	Console io.Writer
	// HTTPClient reaches racklet-boot; nil uses a client with bounded
	// connect and header timeouts.
	HTTPClient *http.Client
	// RootDir, HandoverFile and Init default to the constants of this
	// package and bootparams.HandoverFile.
	RootDir, HandoverFile, Init string
	// SecretDir receives the released secrets the booted OS uses (the
	// Kubernetes join facts, for racklet-kube-join.service); default
	// nodejoin.SecretDir, on /run, which moves into the booted OS.
	SecretDir string
	// ServerKey is racklet-boot's answer-signing key; nil reads
	// ServerKeyFile (default bootparams.ServerKeyFile, in the initramfs).
	// With it, whoami, the challenge and the release must be signed under
	// it; without it, the agent attests nothing (it may still boot a node
	// with racklet.hat=none, whose root the command line pins).
	ServerKey     ed25519.PublicKey
	ServerKeyFile string
	// Logger receives details (debug on the command line makes them visible).
	Logger *slog.Logger
}

// StageError is a failed boot stage.
type StageError struct {
	Stage string // a bootparams.Stage* name, or "start" before the network
	Err   error
}

func (e *StageError) Error() string { return fmt.Sprintf("%s: %v", e.Stage, e.Err) }
func (e *StageError) Unwrap() error { return e.Err }

// Boot runs the node boot path, from the pseudo-filesystems to the real
// init: it returns only when the boot failed (after the failure action, when
// Machine.Fail returns). Each stage is reported to racklet-boot once the
// network is up; a failure prints one console line, is reported, and ends in
// the command line's racklet.onfailure action.
func Boot(ctx context.Context, o BootOptions) error {
	b := &booter{o: o, m: o.Machine, console: o.Console, log: logger(o.Logger)}
	if b.console == nil {
		b.console = io.Discard
	}
	b.fill()
	err := b.run(ctx)
	var se *StageError
	if !errors.As(err, &se) {
		se = &StageError{Stage: bootparams.StageFailed, Err: err}
	}
	fmt.Fprintf(b.console, "racklet-agent: boot failed at %s: %v\n", se.Stage, se.Err)
	if b.rep != nil {
		b.rep.send(ctx, bootparams.StageFailed, false, se.Error())
	}
	p := b.params.WithDefaults()
	fmt.Fprintf(b.console, "racklet-agent: %s\n", describeAction(p))
	b.m.Fail(p.OnFailure, time.Duration(p.RebootAfter)*time.Second)
	return err
}

func describeAction(p bootparams.Params) string {
	switch p.OnFailure {
	case bootparams.FailReboot:
		return fmt.Sprintf("rebooting in %d s (racklet.onfailure)", p.RebootAfter)
	case bootparams.FailHalt:
		return "powering off (racklet.onfailure=halt)"
	}
	return "starting a shell (racklet.onfailure=shell with racklet.debug)"
}

type booter struct {
	o       BootOptions
	fetch   *http.Client // the root's bulk downloads: o.HTTPClient unless the agent made its own
	m       Machine
	console io.Writer
	log     *slog.Logger
	params  bootparams.Params
	cmdline string
	net     Network
	server  string
	node    string
	slot    *bootparams.SlotBoot // racklet-boot's A/B decision for this boot, nil when none
	rep     *reporter
	// hat is the HAT link kept open after a successful attestation, for
	// EndBoot at the hand-over; nil without a HAT.
	hat     *hatlink.Client
	hatLink io.Closer
}

func (b *booter) fill() {
	b.fetch = b.o.HTTPClient
	if b.o.HTTPClient == nil {
		b.o.HTTPClient = newHTTPClient()
		b.fetch = newFetchClient()
	}
	if b.o.RootDir == "" {
		b.o.RootDir = RootDir
	}
	if b.o.HandoverFile == "" {
		b.o.HandoverFile = bootparams.HandoverFile
	}
	if b.o.Init == "" {
		b.o.Init = Init
	}
	if b.o.SecretDir == "" {
		b.o.SecretDir = nodejoin.SecretDir
	}
	if b.o.ServerKeyFile == "" {
		b.o.ServerKeyFile = bootparams.ServerKeyFile
	}
}

// serverKey loads the key racklet-boot's answers are checked with.
func (b *booter) serverKey() error {
	if b.o.ServerKey != nil {
		return nil
	}
	k, err := serverkey.ReadPublic(b.o.ServerKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the image's server key %s: %w", b.o.ServerKeyFile, err)
	}
	b.o.ServerKey = k
	return nil
}

// answers is the client for the answers the agent acts on (whoami,
// attestation): signed under the server key when the image carries one.
func (b *booter) answers() *http.Client {
	if b.o.ServerKey == nil {
		return b.o.HTTPClient
	}
	return serverkey.Client(b.o.HTTPClient, b.o.ServerKey)
}

func fail(stage string, err error) error { return &StageError{Stage: stage, Err: err} }

func (b *booter) say(format string, a ...any) {
	fmt.Fprintf(b.console, "racklet-agent: "+format+"\n", a...)
}

func (b *booter) run(ctx context.Context) error {
	start := time.Now()
	if err := b.m.MountPseudo(); err != nil {
		return fail("start", fmt.Errorf("mount the pseudo-filesystems: %w", err))
	}
	line, err := b.m.Cmdline()
	if err != nil {
		return fail("start", fmt.Errorf("read the kernel command line: %w", err))
	}
	p, _, err := bootparams.Parse(line)
	if err == nil {
		err = p.Validate()
	}
	if err == nil && p.WithDefaults().Overlay == bootparams.OverlayData {
		err = errors.New("racklet.overlay=data: this agent keeps the overlay on tmpfs only; use racklet.overlay=tmpfs")
	}
	if err != nil {
		return fail("start", fmt.Errorf("the kernel command line is not a racklet boot: %w", err))
	}
	b.params, b.cmdline = p, line
	if err := b.serverKey(); err != nil {
		return fail("start", err)
	}
	if err := b.m.LoadModules(ctx); err != nil {
		return fail("start", fmt.Errorf("load kernel modules: %w", err))
	}
	if err := b.network(ctx); err != nil {
		return err
	}
	secrets, err := b.attest(ctx)
	if err != nil {
		return fail(bootparams.StageAttested, err)
	}
	defer clear(secrets)
	sq, ve, err := b.fetchRoot(ctx)
	if err != nil {
		return fail(bootparams.StageRootFetched, err)
	}
	root, err := b.m.MountRoot(ctx, Root{Squashfs: sq, Verity: ve, Params: p})
	if err != nil {
		return fail(bootparams.StageRootVerified, err)
	}
	b.say("root %s verified by dm-verity and mounted", shortHash(p.RootHash))
	b.rep.send(ctx, bootparams.StageRootVerified, true, "root hash "+p.RootHash)
	// The Kubernetes join facts stay in RAM for the booted OS's join unit;
	// a node that cannot keep them still boots, and says why it will not join.
	if err := nodejoin.Keep(secrets, b.o.SecretDir); err != nil {
		b.say("kubernetes: %v", err)
		b.rep.send(ctx, bootparams.StageKubernetes, false, err.Error())
	} else if _, ok := secrets[attest.SecretKubernetesJoin]; ok {
		b.say("kubernetes join facts kept for the booted OS")
	}
	h := bootparams.Handover{Server: b.server, Node: b.node, Image: p.Root, Attested: secrets != nil, Boot: b.slot, HAT: p.HAT}
	if err := bootparams.WriteHandover(b.o.HandoverFile, h); err != nil {
		return fail(bootparams.StageSwitched, err)
	}
	if err := b.endBoot(ctx); err != nil {
		return fail(bootparams.StageSwitched, err)
	}
	b.say("switching to %s after %s", b.o.Init, time.Since(start).Round(time.Millisecond))
	b.rep.send(ctx, bootparams.StageSwitched, true, "exec "+b.o.Init)
	return fail(bootparams.StageSwitched, b.m.SwitchRoot(root, b.o.Init))
}

// network brings up the NIC, finds racklet-boot and the node's name.
func (b *booter) network(ctx context.Context) error {
	nw, err := b.m.Network(ctx)
	if err != nil {
		return fail(bootparams.StageNetwork, err)
	}
	b.net = nw
	b.server = b.params.Server
	if b.server == "" {
		b.server = nw.Server
	}
	if b.server == "" {
		return fail(bootparams.StageNetwork, errors.New("no racklet-boot URL: no DHCP offer carried one (option 67 for option 60 racklet-agent) and racklet.server= is not set"))
	}
	b.server = strings.TrimSuffix(b.server, "/")
	b.node = b.params.Node
	who, err := whoami(ctx, b.answers(), b.server)
	switch {
	case err != nil && b.node == "":
		return fail(bootparams.StageNetwork, err)
	case err != nil:
		b.log.Warn("whoami failed; booting without racklet-boot's A/B decision", "node", b.node, "err", err)
	case b.node == "" || who.Node == b.node:
		b.node, b.slot = who.Node, who.Boot
	}
	b.rep = &reporter{hc: b.o.HTTPClient, server: b.server, node: b.node, image: b.params.Root, log: b.log}
	b.say("%s %s on %s, node %s, racklet-boot %s", nw.Interface, nw.MAC, nw.Addr, b.node, b.server)
	b.rep.send(ctx, bootparams.StageNetwork, true, fmt.Sprintf("%s %s on %s", nw.Addr, nw.MAC, nw.Interface))
	return nil
}

// fileURL is the URL of one of the node's boot files on racklet-boot: the
// MAC prefix names the node to the resolver whatever its address.
func (b *booter) fileURL(name string) string {
	return b.server + "/boot/" + strings.ReplaceAll(b.net.MAC.String(), ":", "-") + "/" + name
}

// fetchRoot fetches root.squashfs and root.verity, checking their digests.
func (b *booter) fetchRoot(ctx context.Context) (string, string, error) {
	var paths []string
	var total int64
	start := time.Now()
	for _, f := range []struct{ name, digest string }{{"root.squashfs", b.params.Root}, {"root.verity", b.params.Verity}} {
		dst := filepath.Join(b.o.RootDir, f.name)
		n, err := Fetch(ctx, b.fetch, b.fileURL(f.name), dst, f.digest, FetchOptions{Logger: b.log})
		if err != nil {
			return "", "", err
		}
		total += n
		paths = append(paths, dst)
	}
	d := time.Since(start)
	b.say("root fetched: %d bytes in %s (%.1f MB/s), digests match the command line", total, d.Round(time.Millisecond), float64(total)/1e6/max(d.Seconds(), 1e-3))
	b.rep.send(ctx, bootparams.StageRootFetched, true, fmt.Sprintf("%d bytes in %s", total, d.Round(time.Millisecond)))
	return paths[0], paths[1], nil
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// bootFileName checks a racklet.kernel name for use in a URL path.
func bootFileName(name string) (string, error) {
	clean := path.Clean("/" + name)[1:]
	if name == "" || clean != name {
		return "", fmt.Errorf("boot file name %q is not a plain relative name", name)
	}
	return name, nil
}
