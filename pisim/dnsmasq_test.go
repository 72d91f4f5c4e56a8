package pisim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv names the environment of the re-executed test binary that
// runs the simulated rack inside the client namespace.
const (
	helperEnv   = "RKP_HELPER_RACK"
	helperIface = "RKP_HELPER_IFACE"
	helperPis   = "RKP_HELPER_PIS"
	helperOut   = "RKP_HELPER_OUT"
)

// TestHelperRack is not a test: the dnsmasq tests run the test binary again
// inside their client namespace (ip netns exec) with this test selected.
func TestHelperRack(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for the dnsmasq tests")
	}
	var pis []*Pi
	if err := json.Unmarshal([]byte(os.Getenv(helperPis)), &pis); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res := RunRack(ctx, os.Getenv(helperIface), pis, 2)
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(os.Getenv(helperOut), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer collects a child's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// writeTree writes TFTP trees into a fresh directory nobody can read
// (dnsmasq serves TFTP as nobody).
func writeTree(t *testing.T, trees ...map[string][]byte) string {
	t.Helper()
	root, err := os.MkdirTemp("", "rkp-tftp-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	for _, tree := range trees {
		for name, data := range tree {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// startDnsmasq runs dnsmasq in namespace ns until the test ends and
// returns its log.
func startDnsmasq(t *testing.T, ctx context.Context, ns string, args ...string) *lockedBuffer {
	t.Helper()
	var log lockedBuffer
	args = append([]string{"netns", "exec", ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--log-dhcp", "--log-facility=-", "--bind-interfaces"}, args...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("dnsmasq in %s:\n%s", ns, log.String())
		}
	})
	// dnsmasq logs "started" once its sockets are bound.
	for i := 0; i < 100 && !strings.Contains(log.String(), "started"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	return &log
}

// bootInNS boots pis on macvlans of the client interface, from inside the
// client namespace, and returns their results.
func bootInNS(t *testing.T, ctx context.Context, lan *testLAN, pis []*Pi) []*Result {
	t.Helper()
	spec, err := json.Marshal(pis)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "results.json")
	helper := exec.CommandContext(ctx, "ip", "netns", "exec", lan.CliNS, os.Args[0], "-test.run=^TestHelperRack$", "-test.v")
	helper.Env = append(os.Environ(), helperEnv+"=1", helperIface+"="+lan.CliIf, helperPis+"="+string(spec), helperOut+"="+out)
	start := time.Now()
	if b, err := helper.CombinedOutput(); err != nil {
		t.Fatalf("rack helper: %v\n%s", err, b)
	}
	t.Logf("%d pis booted in %s", len(pis), time.Since(start).Round(time.Millisecond))
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var results []*Result
	if err := json.Unmarshal(b, &results); err != nil {
		t.Fatal(err)
	}
	if len(results) != len(pis) {
		t.Fatalf("%d results for %d pis", len(results), len(pis))
	}
	return results
}

// checkKernelSent checks that dnsmasq logged sending r's kernel to r's own
// leased address: each Pi's TFTP came from its own macvlan.
func checkKernelSent(t *testing.T, log *lockedBuffer, root string, r *Result) {
	t.Helper()
	kernel := "kernel8.img"
	if r.Model == 5 {
		kernel = r.Serial + "/kernel_2712.img"
	} else if !r.PrefixDropped {
		kernel = r.Serial + "/kernel8.img"
	}
	if want := "sent " + filepath.Join(root, kernel) + " to " + r.Address; !strings.Contains(log.String(), want) {
		t.Errorf("dnsmasq log has no %q", want)
	}
}

// TestDnsmasqRack boots three simulated Pis, each on its own macvlan,
// against dnsmasq (DHCP + PXE menu + TFTP) in a private LAN: a Pi 4 whose
// prefix is dropped, a Pi 4 with its own serial directory, and a Pi 5.
func TestDnsmasqRack(t *testing.T) {
	needRootTools(t, "ip", "dnsmasq")
	lan := newTestLAN(t, false)
	pis := append(NewPis(2, 4, 42), NewPis(1, 5, 43)...)
	pis[0].Blksize = 1024 // older firmware
	root := writeTree(t, pi4Tree(""), pi4Tree(pis[1].Name()+"/"), pi5Tree(pis[2].Name()+"/"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := startDnsmasq(t, ctx, lan.SrvNS, "--interface="+lan.SrvDev,
		"--dhcp-leasefile="+filepath.Join(root, "leases"),
		"--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h", "--dhcp-boot=bootcode.bin",
		`--pxe-service=0,"Raspberry Pi Boot"`, "--enable-tftp", "--tftp-root="+root)
	results := bootInNS(t, ctx, lan, pis)
	addrs := map[string]bool{}
	for i, r := range results {
		t.Logf("%s", r)
		if !r.KernelLoaded || r.Verdict != VerdictKernel {
			t.Errorf("pi %s: verdict %q, error %q", r.Serial, r.Verdict, r.Error)
			continue
		}
		if r.TFTPServer != "10.77.0.1" || r.TFTPSource != "siaddr" || r.Proxy || !r.Echoed97 {
			t.Errorf("pi %s: tftp server %s from %s, proxy %v, option 97 echoed %v", r.Serial, r.TFTPServer, r.TFTPSource, r.Proxy, r.Echoed97)
		}
		if !strings.HasPrefix(r.Address, "10.77.0.") || addrs[r.Address] {
			t.Errorf("pi %s: address %q not a distinct lease", r.Serial, r.Address)
		}
		addrs[r.Address] = true
		if wantDrop := i == 0; r.PrefixDropped != wantDrop {
			t.Errorf("pi %s: prefix dropped %v, want %v", r.Serial, r.PrefixDropped, wantDrop)
		}
		checkKernelSent(t, log, root, r)
	}
}

// TestDnsmasqProxy boots Pis beside a "home router" (dnsmasq handing out
// addresses, no PXE) and a proxy (dnsmasq in proxy mode with the Pi menu and
// TFTP), as the Raspberry Pi documentation sets it up: the address must
// come from the router, the boot settings and TFTP from the proxy.
func TestDnsmasqProxy(t *testing.T) {
	needRootTools(t, "ip", "dnsmasq")
	lan := newTestLAN(t, true)
	pis := append(NewPis(1, 4, 44), NewPis(1, 5, 45)...)
	root := writeTree(t, pi4Tree(""), pi5Tree(pis[1].Name()+"/"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	startDnsmasq(t, ctx, lan.RtrNS, "--interface="+lan.RtrIf, "--no-ping",
		"--dhcp-leasefile="+filepath.Join(root, "router.leases"),
		"--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h", "--dhcp-option=3,10.77.0.254")
	log := startDnsmasq(t, ctx, lan.SrvNS, "--interface="+lan.SrvDev,
		"--dhcp-leasefile="+filepath.Join(root, "proxy.leases"),
		"--dhcp-range=10.77.0.0,proxy", `--pxe-service=0,"Raspberry Pi Boot"`, "--enable-tftp", "--tftp-root="+root)
	if os.Getenv("RKP_DEBUG_PCAP") != "" {
		for i, ns := range []string{lan.CliNS, lan.SrvNS, lan.RtrNS} {
			dev := []string{lan.CliIf, lan.SrvDev, lan.RtrIf}[i]
			c := exec.Command("ip", "netns", "exec", ns, "dumpcap", "-q", "-i", dev, "-w", fmt.Sprintf("/tmp/rkpdbg%d.pcap", i))
			c.Start()
			t.Cleanup(func() { time.Sleep(200 * time.Millisecond); c.Process.Signal(os.Interrupt); c.Wait() })
		}
		time.Sleep(2 * time.Second)
	}
	// This test drives the client namespace from here (MacvlanTransport.NetNS)
	// where TestDnsmasqRack re-executes itself inside it.
	rack := &Rack{Transport: &MacvlanTransport{Parent: lan.CliIf, NetNS: lan.CliNS}, Pis: pis, Concurrency: 2}
	for _, r := range rack.Run(ctx) {
		t.Logf("%s", r)
		if !r.KernelLoaded || r.Verdict != VerdictKernel {
			t.Errorf("pi %s: verdict %q, error %q", r.Serial, r.Verdict, r.Error)
			continue
		}
		// dnsmasq's proxy offer has no siaddr and no option 66: the Pi
		// must fall back to option 54, the proxy itself.
		if !r.Proxy || r.DHCPServer != "10.77.0.254" || r.TFTPServer != "10.77.0.1" || r.TFTPSource != "option 54" {
			t.Errorf("pi %s: proxy %v, address from %s, tftp from %s (%s)", r.Serial, r.Proxy, r.DHCPServer, r.TFTPServer, r.TFTPSource)
		}
		checkKernelSent(t, log, root, r)
	}
}
