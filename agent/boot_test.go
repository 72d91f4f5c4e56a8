package agent_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/boot/nodeapi"
	"github.com/racklet/racklet-boot/bootparams"
	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/serverkey"
	"github.com/racklet/racklet-boot/store"
)

// fakeMachine plays a node for the flow: it records what the flow asked
// of it; the network, HAT and files are real (httptest, hatsim).
type fakeMachine struct {
	t         *testing.T
	cmdline   string
	server    string // the URL its DHCP "offer" carried
	initramfs string // digest of the "loaded" initramfs
	hat       hatlink.Handler
	calls     []string
	root      agent.Root
	failed    string
}

var mac = net.HardwareAddr{0x52, 0x54, 0, 0x99, 0, 0xa1}

func (m *fakeMachine) MountPseudo() error       { m.calls = append(m.calls, "mount"); return nil }
func (m *fakeMachine) Cmdline() (string, error) { return m.cmdline, nil }
func (m *fakeMachine) LoadModules(context.Context) error {
	m.calls = append(m.calls, "modules")
	return nil
}
func (m *fakeMachine) Network(context.Context) (agent.Network, error) {
	m.calls = append(m.calls, "network")
	return agent.Network{Interface: "eth0", MAC: mac, Addr: "127.0.0.1/8", Server: m.server}, nil
}
func (m *fakeMachine) InitramfsDigest() (string, error) { return m.initramfs, nil }
func (m *fakeMachine) OpenHAT(ctx context.Context, spec string) (io.ReadWriteCloser, error) {
	m.calls = append(m.calls, "hat")
	a, b := net.Pipe()
	go hatlink.Serve(context.WithoutCancel(ctx), b, m.hat) // a real HAT outlives the attestation: EndBoot follows at the hand-over
	return a, nil
}
func (m *fakeMachine) MountRoot(_ context.Context, r agent.Root) (string, error) {
	m.calls = append(m.calls, "mount-root")
	m.root = r
	return "/newroot", nil
}
func (m *fakeMachine) SwitchRoot(root, init string) error {
	m.calls = append(m.calls, "switch "+root+" "+init)
	return errors.New("exec: not on a real node")
}
func (m *fakeMachine) Fail(action string, delay time.Duration) {
	m.failed = action + " after " + delay.String()
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// rack is racklet-boot as far as the agent sees it: pc-01's boot files,
// the node API and the attestation API.
type rack struct {
	srv                              *httptest.Server
	files                            map[string][]byte
	events                           store.Store
	kernel, initramfs, squash, verit []byte
	params                           bootparams.Params
	signer                           *serverkey.Signer // racklet-boot's answer-signing key
	dir                              string
	api                              *nodeapi.Handler
	// kubeJoin, when set, is released as the Kubernetes join facts.
	kubeJoin []byte
}

func newRack(t *testing.T, hat *hatsim.Device) *rack {
	r := &rack{files: map[string][]byte{}, events: store.NewMemory(), dir: t.TempDir(),
		kernel: []byte("kernel bytes"), initramfs: []byte("initramfs bytes"),
		squash: []byte(strings.Repeat("squash", 5000)), verit: []byte("verity tree")}
	r.params = bootparams.Params{RootHash: strings.Repeat("ab", 32), DataBlocks: 8, Kernel: "vmlinuz",
		Root: "sha256:" + sha(r.squash), Verity: "sha256:" + sha(r.verit), OnFailure: bootparams.FailReboot, RebootAfter: 3}
	if hat == nil {
		r.params.HAT = "none"
	}
	r.files["vmlinuz"], r.files["root.squashfs"], r.files["root.verity"] = r.kernel, r.squash, r.verit
	r.files["cmdline.txt"] = []byte("console=ttyS0 " + r.params.String() + "\n")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boot/52-54-00-99-00-a1/{name}", func(w http.ResponseWriter, req *http.Request) {
		b, ok := r.files[req.PathValue("name")]
		if !ok {
			http.NotFound(w, req)
			return
		}
		http.ServeContent(w, req, "", time.Time{}, strings.NewReader(string(b)))
	})
	_, priv, _ := ed25519.GenerateKey(nil)
	r.signer = serverkey.NewSigner(priv)
	r.api = &nodeapi.Handler{Events: r.events, ReportsPerMinute: 1000,
		Nodes: nodeapi.DirectoryFunc(func(context.Context, netip.Addr) (string, bool, error) { return "pc-01", true, nil })}
	mux.Handle("GET "+bootparams.WhoAmIPath, r.signer.Sign(r.api))
	mux.Handle("POST "+bootparams.ReportPath, r.api)
	dir := t.TempDir()
	enr, sec, err := verifier.OpenDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	withKube := verifier.SecretsFunc(func(ctx context.Context, node string) (verifier.NodeSecrets, error) {
		s, err := sec.Secrets(ctx, node)
		s.KubernetesJoin = r.kubeJoin
		return s, err
	})
	v := &verifier.Verifier{Enrollments: enr, Secrets: withKube, Events: r.events,
		Expected: verifier.ExpectedFunc(func(context.Context, string) (attest.Measurements, error) {
			return attest.Measurements{Kernel: sha(r.kernel), Initramfs: sha(r.initramfs),
				Cmdline: attest.NormalizeCmdline(string(r.files["cmdline.txt"])), RootHash: r.params.RootHash}, nil
		})}
	if hat != nil {
		if err := v.Preprovision(t.Context(), map[string]string{"pc-01": hatlink.EncodeKey(hat.Identity().SignKey)}); err != nil {
			t.Fatal(err)
		}
	}
	mux.Handle(attest.PathPrefix, r.signer.Sign(v.Handler()))
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// timeline is pc-01's agent events as "type detail".
func (r *rack) timeline(t *testing.T) []string {
	evs, err := r.events.Events(context.Background(), "pc-01", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if strings.HasPrefix(e.Type, "agent.") {
			out = append(out, strings.TrimPrefix(e.Type, "agent."))
		}
	}
	return out
}

func (r *rack) machine(t *testing.T, hat hatlink.Handler) *fakeMachine {
	return &fakeMachine{t: t, cmdline: "BOOT_IMAGE=/vmlinuz " + strings.TrimSpace(string(r.files["cmdline.txt"])),
		server: r.srv.URL + "/", initramfs: sha(r.initramfs), hat: hat}
}

func newHAT(t *testing.T) *hatsim.Device {
	dev, err := hatsim.Open(filepath.Join(t.TempDir(), "hat.json"), hatsim.Options{Serial: "5b154510"})
	if err != nil {
		t.Fatal(err)
	}
	return dev
}

func TestBoot(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hat      bool
		edit     func(r *rack, m *fakeMachine)
		calls    []string
		timeline []string
		console  string // the failure line
		action   string // the failure action carried out
		opts     func(r *rack, o *agent.BootOptions)
	}{
		{name: "no HAT: fetched, verified, switched", hat: false,
			calls:    []string{"mount", "modules", "network", "mount-root", "switch /newroot /sbin/init"},
			timeline: []string{"network", "attested", "root-fetched", "root-verified", "switched", "failed"},
			console:  "boot failed at switched: exec: not on a real node"},
		{name: "HAT: attested before the root", hat: true,
			calls:    []string{"mount", "modules", "network", "hat", "mount-root", "switch /newroot /sbin/init"},
			timeline: []string{"network", "attested", "root-fetched", "root-verified", "switched", "failed"},
			console:  "boot failed at switched"},
		{name: "a flipped byte in root.squashfs", hat: false,
			edit: func(r *rack, m *fakeMachine) {
				b := []byte(string(r.squash))
				b[100] ^= 1
				r.files["root.squashfs"] = b
			},
			calls:    []string{"mount", "modules", "network"},
			timeline: []string{"network", "attested", "failed"},
			console:  "boot failed at root-fetched: root.squashfs from {URL}: digest mismatch"},
		{name: "another initramfs booted", hat: true,
			edit:     func(r *rack, m *fakeMachine) { m.initramfs = sha([]byte("tampered initramfs")) },
			calls:    []string{"mount", "modules", "network", "hat"},
			timeline: []string{"network", "failed"},
			console:  "boot failed at attested: attestation refused by racklet-boot"},
		{name: "a loader slipped a racklet word in", hat: true,
			edit:     func(r *rack, m *fakeMachine) { m.cmdline = "racklet.node=pi-99 " + m.cmdline },
			calls:    []string{"mount", "modules", "network"},
			timeline: nil, // reports for pi-99 from pc-01's address are refused
			console:  `boot failed at attested: "racklet.node=pi-99" precedes the image's command line`},
		{name: "an image without the server key attests nothing", hat: true,
			opts: func(r *rack, o *agent.BootOptions) {
				o.ServerKey, o.ServerKeyFile = nil, filepath.Join(r.dir, "absent.pub")
			},
			calls:    []string{"mount", "modules", "network"},
			timeline: []string{"network", "failed"},
			console:  "boot failed at attested: no racklet-boot server key to check its answers with"},
		{name: "answers signed by another server", hat: true,
			opts: func(r *rack, o *agent.BootOptions) {
				pub, _, _ := ed25519.GenerateKey(nil)
				o.ServerKey = pub
			},
			calls:    []string{"mount", "modules", "network"},
			timeline: nil,
			console:  "boot failed at network: ask racklet-boot for this node's name: Get"},
		{name: "no server anywhere", hat: false,
			edit:     func(r *rack, m *fakeMachine) { m.server = "" },
			calls:    []string{"mount", "modules", "network"},
			timeline: nil,
			console:  "boot failed at network: no racklet-boot URL"},
		{name: "unknown racklet key", hat: false,
			edit:    func(r *rack, m *fakeMachine) { m.cmdline += " racklet.colour=blue" },
			calls:   []string{"mount"},
			console: `boot failed at start: the kernel command line is not a racklet boot: kernel command line: unknown key "racklet.colour=blue"`,
			action:  "reboot after 10s"}, // the command line's own action is unknown: the default
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hat *hatsim.Device
			if tc.hat {
				hat = newHAT(t)
			}
			r := newRack(t, hat)
			m := r.machine(t, hat)
			if tc.edit != nil {
				tc.edit(r, m)
			}
			var console strings.Builder
			dir := t.TempDir()
			o := agent.BootOptions{Machine: m, Console: &console, ServerKey: r.signer.Public(),
				RootDir: filepath.Join(dir, "root"), HandoverFile: filepath.Join(dir, "boot.json")}
			if tc.opts != nil {
				tc.opts(r, &o)
			}
			err := agent.Boot(t.Context(), o)
			if err == nil {
				t.Fatal("Boot returned nil; it only returns on failure")
			}
			want := strings.ReplaceAll(tc.console, "{URL}", r.srv.URL+"/boot/52-54-00-99-00-a1/root.squashfs")
			if !strings.Contains(console.String(), want) {
				t.Errorf("console:\n%s\nwant a line containing %q", console.String(), want)
			}
			if d := cmp.Diff(tc.calls, m.calls); d != "" {
				t.Errorf("machine calls (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.timeline, r.timeline(t)); d != "" {
				t.Errorf("pc-01's timeline (-want +got):\n%s", d)
			}
			if tc.action == "" {
				tc.action = "reboot after 3s" // racklet.onfailure=reboot:3
			}
			if m.failed != tc.action {
				t.Errorf("failure action %q, want %s", m.failed, tc.action)
			}
			if tc.hat && slices.Contains(m.calls, "switch /newroot /sbin/init") {
				// The hand-over ended the measured boot on the HAT: the booted
				// OS cannot extend the boot registers any more.
				a, b := net.Pipe()
				go hatlink.Serve(t.Context(), b, m.hat)
				c, err := hatlink.NewClient(t.Context(), hatlink.NewLink(a))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Extend(t.Context(), 0, [32]byte{1}); !errors.Is(err, hatlink.ErrLocked) {
					t.Errorf("extend of a boot register after the hand-over: %v, want ErrLocked", err)
				}
			}
		})
	}
}

// TestBootHandover: what a boot that reaches switch_root leaves the OS.
func TestBootHandover(t *testing.T) {
	hat := newHAT(t)
	r := newRack(t, hat)
	m := r.machine(t, hat)
	dir := t.TempDir()
	agent.Boot(t.Context(), agent.BootOptions{Machine: m, ServerKey: r.signer.Public(), RootDir: filepath.Join(dir, "root"), HandoverFile: filepath.Join(dir, "boot.json")})
	h, err := bootparams.ReadHandover(filepath.Join(dir, "boot.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := bootparams.Handover{Server: r.srv.URL, Node: "pc-01", Image: r.params.Root, Attested: true}
	if d := cmp.Diff(want, h); d != "" {
		t.Errorf("hand-over (-want +got):\n%s", d)
	}
	for name, b := range map[string][]byte{m.root.Squashfs: r.squash, m.root.Verity: r.verit} {
		if got, _ := os.ReadFile(name); string(got) != string(b) {
			t.Errorf("%s holds %d bytes, not the served file", name, len(got))
		}
	}
	if m.root.Params.RootHash != r.params.RootHash || m.root.Params.DataBlocks != 8 {
		t.Errorf("MountRoot got params %+v", m.root.Params)
	}
	// The booted OS's health unit reports through the hand-over.
	if err := agent.Health(t.Context(), agent.HealthOptions{Handover: filepath.Join(dir, "boot.json"), Attempts: 1}); err != nil {
		t.Fatal(err)
	}
	if tl := r.timeline(t); tl[len(tl)-1] != "healthy" {
		t.Errorf("timeline ends %v, want healthy", tl)
	}
}
