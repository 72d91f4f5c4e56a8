package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/hatlink"
	"github.com/racklet/racklet-boot/hatsim"
	"github.com/racklet/racklet-boot/image"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/internal/vmtest"
	"github.com/racklet/racklet-boot/kube/kubebin"
	"github.com/racklet/racklet-boot/kube/kubetest"
	"github.com/racklet/racklet-boot/serverkey"
)

// TestKubernetesNodeBoots is issue 18 end to end on x86-64: the Debian 12
// amd64 base with the kubernetes package set (debian.sh --profile
// kubernetes) → racklet-image build --kubernetes v1.37.2 (kubelet and
// kubeadm from kubebin) → racklet-boot serves it, with a control plane
// (kubetest: etcd, the API server, controller manager and scheduler built
// from the same module) in its namespace and the cluster in the rack config.
//
// First a boot of a changed initramfs: attestation refuses it, no bootstrap
// token is made for the node and it never appears in the cluster. Then the
// image as built: QEMU's iPXE boots it, the agent attests with
// racklet-hat-sim, receives the join facts in the sealed release and keeps
// them on /run, systemd starts containerd, the kubelet and
// racklet-kube-join.service (kubeadm join with the released token), and
// `kubectl get nodes` shows pc-01 Ready — the time from power-on to Ready is
// logged. racklet-boot's timeline holds the kubernetes stage and
// `racklet-boot nodes` shows the node joined, Ready, with its version.
func TestKubernetesNodeBoots(t *testing.T) {
	need(t, "qemu-system-x86_64", "mcopy", "ss", "curl", "mmdebstrap", "dpkg-deb", "depmod", "flock")
	etcd := testutil.NeedTool(t, "etcd")
	testutil.NeedTool(t, "go")
	ctx := t.Context()
	dir := t.TempDir()
	keyDir := filepath.Join(vmtest.CacheDir(), "e2e", "server-key") // the e2e test's: its images stay valid
	if _, err := serverkey.Open(keyDir); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{serverkey.PrivateFile, serverkey.PublicFile} {
		if err := os.WriteFile(filepath.Join(data, f), []byte(readFileT(t, filepath.Join(keyDir, f))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The one addition to the image as an operator builds it: containerd,
	// the kubelet and the join also log to the serial console, so a failure
	// here shows why.
	overlay := filepath.Join(vmtest.CacheDir(), "e2e", "kube-console-overlay")
	for _, u := range []string{"containerd.service", "kubelet.service", "racklet-kube-join.service"} {
		writeFile(t, filepath.Join(overlay, "etc/systemd/system", u+".d"), "console.conf",
			"[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n")
	}
	img, took := debianImage(t, "amd64", []string{"--profile", "kubernetes"},
		"--server-key", filepath.Join(keyDir, serverkey.PublicFile), "--kubernetes", "v1.37.2", "--overlay", overlay)
	t.Logf("kubernetes image ready in %s: %s", took.Round(100*time.Millisecond), img)
	m, err := image.ReadManifest(img)
	if err != nil {
		t.Fatal(err)
	}
	// Served from a plain directory: the boot partition's files, the root
	// and its tree (the registry path is TestNodeBootsDebianImage's).
	plain := bootDir(t, nil)
	for _, f := range m.Boot.Files {
		if b, err := exec.Command("mcopy", "-n", "-i", filepath.Join(img, image.BootFile), "::"+f, filepath.Join(plain, f)).CombinedOutput(); err != nil {
			t.Fatalf("mcopy %s: %v: %s", f, err, b)
		}
	}
	for _, f := range []string{image.RootFile, image.VerityFile} {
		if err := os.Link(filepath.Join(img, f), filepath.Join(plain, f)); err != nil {
			t.Fatal(err)
		}
	}

	sw := newSwitch(t)
	srvNS := newHost(t, "kube")
	if err := sw.Attach(ctx, srvNS, "eth0", mustPrefix("10.84.0.1/24")); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	kbin, err := kubebin.Build(ctx, kubebin.Options{Commands: kubebin.All})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubernetes %s commands for the host ready in %s (built %v)", kbin.Version, time.Since(began).Round(time.Second), kbin.Built)
	began = time.Now()
	cp, err := kubetest.Start(ctx, kubetest.Options{Bin: kbin, Dir: filepath.Join(dir, "k8s"), Etcd: etcd,
		Address: mustPrefix("10.84.0.1/24").Addr(), Command: srvNS.Command})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	t.Logf("control plane up at %s in %s", cp.Endpoint, time.Since(began).Round(time.Second))

	hatState := filepath.Join(dir, "hat.json")
	dev, err := hatsim.Open(hatState, hatsim.Options{Serial: "5b154518"})
	if err != nil {
		t.Fatal(err)
	}
	const vmMAC = "52:54:00:84:00:01"
	srv := startServer(t, srvNS, dir, rackConfig("eth0", "10.84.0.1", data, `mode: full
pool: {start: 10.84.0.100, end: 10.84.0.150}
router: 10.84.0.1
leaseTime: 1h`, fmt.Sprintf(`kubernetes:
  apiServer: %s
  token: {kubeconfig: %s, ttl: 30m}
nodes:
  - name: pc-01
    kind: bios
    mac: %s
    hatKey: %q
    boot: {dir: %s, rootHash: %s}
`, cp.Endpoint, cp.AdminKubeconfig, vmMAC, hatlink.EncodeKey(dev.Identity().SignKey), plain, m.Verity.RootHash)))
	waitListening(t, srvNS, srv.proc, 10*time.Second, "udp:67")
	if err := sw.AddTap(ctx, "tap0"); err != nil {
		t.Fatal(err)
	}
	kubectl := func(args ...string) string {
		t.Helper()
		out, err := srvNS.Output(ctx, kbin.Path(kubebin.Kubectl), append([]string{"--kubeconfig", cp.AdminKubeconfig}, args...)...)
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	tokens := func() int {
		t.Helper()
		out, err := srvNS.Output(ctx, kbin.Path(kubebin.Kubeadm), "token", "list", "--kubeconfig", cp.AdminKubeconfig)
		if err != nil {
			t.Fatalf("kubeadm token list: %v\n%s", err, out)
		}
		return len(lines(out, "node pc-01"))
	}

	// boot powers the machine on with a fresh HAT and runs it until done
	// says so; it returns the console and how long done took.
	boot := func(t *testing.T, qemuArgs []string, limit time.Duration, done func(console string) bool) (string, time.Duration) {
		t.Helper()
		sock := filepath.Join(dir, "hat.sock")
		hat := start(t, sw.NS, filepath.Join(bin, "racklet-hat-sim"), "--state", hatState, "--listen", "unix:"+sock)
		hat.waitOutput(t, "unix:"+sock, 10*time.Second)
		defer hat.Stop()
		args := append([]string{"-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot", "-m", "2048",
			"-nic", "tap,ifname=tap0,script=no,downscript=no,model=virtio-net-pci,mac=" + vmMAC,
			"-device", "virtio-serial-pci", "-chardev", "socket,id=hat,path=" + sock,
			"-device", "virtserialport,chardev=hat,name=racklet.hat"}, qemuArgs...)
		begin := time.Now()
		vm := startVM(t, sw, "qemu-system-x86_64", args...)
		defer vm.Kill()
		for deadline := begin.Add(limit); !done(plainConsole(vm.Output())); time.Sleep(5 * time.Second) {
			if time.Now().After(deadline) || vm.Exited() {
				t.Fatalf("the machine did not finish within %s (exited: %v); console:\n%s\nserver:\n%s", limit, vm.Exited(),
					tail(plainConsole(vm.Output()), 8000), tail(srv.Output(), 3000))
			}
		}
		return plainConsole(vm.Output()), time.Since(begin)
	}

	t.Run("changed initramfs gets no token and never joins", func(t *testing.T) {
		changed := filepath.Join(dir, "initramfs-changed")
		extra := vmtest.NewInitramfs()
		extra.File("etc/changed", []byte("an extra file\n"), 0o644)
		extra.Write(t, changed+".extra")
		orig := readFileT(t, filepath.Join(plain, image.GenericInitramfs))
		if err := os.WriteFile(changed, append([]byte(orig), readFileT(t, changed+".extra")...), 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := boot(t, []string{"-kernel", filepath.Join(plain, image.GenericKernel), "-initrd", changed, "-append", m.Cmdline}, 8*time.Minute,
			func(c string) bool { return strings.Contains(c, "racklet-agent: boot failed") })
		if !strings.Contains(out, "boot failed at attested: attestation refused by racklet-boot") || strings.Contains(out, "switching to /sbin/init") {
			t.Fatalf("want an attestation refusal and no root switch; console:\n%s", tail(out, 5000))
		}
		requireFailureAt(t, srv, "10.84.0.1", "pc-01", "mismatch: initramfs")
		if n := tokens(); n != 0 {
			t.Errorf("kubeadm token list shows %d tokens for pc-01 after a refused attestation, want none", n)
		}
		if out := kubectl("get", "nodes", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("the cluster has nodes after a refused boot:\n%s", out)
		}
	})

	t.Run("image boots, joins and is Ready", func(t *testing.T) {
		ready := func() bool {
			out, err := srvNS.Output(ctx, kbin.Path(kubebin.Kubectl), "--kubeconfig", cp.AdminKubeconfig, "get", "node", "pc-01",
				"-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			return err == nil && strings.TrimSpace(out) == "True"
		}
		const joinFailed = "See 'systemctl status racklet-kube-join.service'" // after its FAILED line
		out, took := boot(t, []string{"-boot", "n"}, 30*time.Minute, func(c string) bool { return strings.Contains(c, joinFailed) || ready() })
		if !ready() {
			t.Fatalf("the join failed; console:\n%s", tail(out, 12000))
		}
		t.Logf("power-on to Ready: %s", took.Round(time.Second))
		t.Logf("agent lines:\n%s", strings.Join(lines(out, "racklet-agent"), "\n"))
		for _, want := range []string{"attestation accepted", "kubernetes join facts kept for the booted OS", "switching to /sbin/init"} {
			if !strings.Contains(out, want) {
				t.Errorf("console has no %q", want)
			}
		}
		t.Logf("kubectl get nodes:\n%s", kubectl("get", "nodes", "-o", "wide"))
		if n := tokens(); n != 1 {
			t.Errorf("kubeadm token list shows %d tokens for pc-01, want the one released to this boot", n)
		}
		// The join's own report, and racklet-boot's view of the cluster
		// (polled every 10 s).
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
			tl := agentTimelineAt(t, srv, "10.84.0.1", "pc-01")
			nodes, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), "nodes", "--data-dir", data)
			joined := lines(strings.Join(tl, "\n"), "agent.kubernetes: joined "+cp.Endpoint)
			if err == nil && len(joined) == 1 && strings.Contains(nodes, "Ready "+kbin.Version) {
				t.Logf("timeline: %s", joined[0])
				t.Logf("racklet-boot nodes:\n%s", nodes)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a minute: timeline %v; racklet-boot nodes (%v):\n%s", tl, err, nodes)
			}
		}
	})
}
