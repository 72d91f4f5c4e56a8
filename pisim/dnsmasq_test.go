package pisim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
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
	testutil.NeedTool(t, "dnsmasq")
	lan := newTestLAN(t, false)
	pis := append(NewPis(2, 4, 42), NewPis(1, 5, 43)...)
	pis[0].Blksize = 1024 // older firmware
	trees := []map[string][]byte{pi4Tree(""), pi4Tree(pis[1].Name() + "/"), pi5Tree(pis[2].Name() + "/")}
	root := writeTree(t, trees...)
	sums := map[string]string{}
	for _, tree := range trees {
		for name, data := range tree {
			sum := sha256.Sum256(data)
			sums[name] = hex.EncodeToString(sum[:])
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// --no-ping: with its default ping check dnsmasq spends ~3 s per new
	// client and, seen here, ignores a second Pi's DISCOVER meanwhile (that
	// Pi only gets its offer after its 4 s retry).
	log := startDnsmasq(t, ctx, lan.SrvNS, "--interface="+lan.SrvDev,
		"--dhcp-leasefile="+filepath.Join(root, "leases"),
		"--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h", "--dhcp-boot=bootcode.bin", "--no-ping",
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
		// Every complete read must carry exactly the bytes of the file.
		for _, st := range r.Steps {
			if st.Result == "ok" && st.SHA256 != sums[st.File] {
				t.Errorf("pi %s: %s arrived with sha256 %s, file has %s", r.Serial, st.File, st.SHA256, sums[st.File])
			}
		}
		checkKernelSent(t, log, root, r)
	}
}

// TestDnsmasqProxy boots Pis beside a "home router" (dnsmasq handing out
// addresses, no PXE) and a proxy (dnsmasq in proxy mode with the Pi menu and
// TFTP), as the Raspberry Pi documentation sets it up: the address must
// come from the router, the boot settings and TFTP from the proxy.
func TestDnsmasqProxy(t *testing.T) {
	testutil.NeedTool(t, "dnsmasq")
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
	// A third Pi whose EEPROM sets PXE_OPTION43 to another menu text must
	// ignore dnsmasq's offers, as the firmware does.
	picky := NewPis(1, 4, 46)[0]
	picky.Menu, picky.DHCPRetry, picky.DHCPTimeout = "Racklet Boot", time.Second, 2500*time.Millisecond
	pis = append(pis, picky)
	// This test drives the client namespace from here (MacvlanTransport.NetNS)
	// where TestDnsmasqRack re-executes itself inside it.
	rack := &Rack{Transport: &MacvlanTransport{Parent: lan.CliIf, NetNS: lan.CliNS}, Pis: pis, Concurrency: 3}
	results := rack.Run(ctx)
	if r := results[2]; r.KernelLoaded || r.Verdict != "failed: dhcp" || !hasStep(r, "dhcp-offer", "does not contain") {
		t.Errorf("pi with another menu: verdict %q error %q\n%s", r.Verdict, r.Error, r)
	}
	for _, r := range results[:2] {
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

// hasStep reports whether r has a step op whose result contains text.
func hasStep(r *Result, op, text string) bool {
	for _, s := range r.Steps {
		if s.Op == op && strings.Contains(s.Result, text) {
			return true
		}
	}
	return false
}
