package integration

import (
	"fmt"
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
	data := filepath.Join(dir, "data")
	serverPub := cachedServerKey(t, data)
	// The one addition to the image as an operator builds it: containerd,
	// the kubelet and the join also log to the serial console, so a failure
	// here shows why.
	overlay := filepath.Join(vmtest.CacheDir(), "e2e", "kube-console-overlay")
	for _, u := range []string{"containerd.service", "kubelet.service", "racklet-kube-join.service"} {
		writeFile(t, filepath.Join(overlay, "etc/systemd/system", u+".d"), "console.conf",
			"[Service]\nStandardOutput=journal+console\nStandardError=journal+console\n")
	}
	img, took := debianImage(t, "amd64", []string{"--profile", "kubernetes"},
		"--server-key", serverPub, "--kubernetes", "v1.37.2", "--overlay", overlay)
	t.Logf("kubernetes image ready in %s: %s", took.Round(100*time.Millisecond), img)
	m, err := image.ReadManifest(img)
	if err != nil {
		t.Fatal(err)
	}
	// Served from a plain directory (the registry path is
	// TestNodeBootsDebianImage's).
	plain := plainImageDir(t, img, m)

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

	// 2 GiB: the root (300 MB) and containerd's state live in RAM.
	node := pcNode(sw, dir, hatState, vmMAC, "2048")

	t.Run("changed initramfs gets no token and never joins", func(t *testing.T) {
		changed := changedInitramfs(t, dir, plain)
		out, _ := node.boot(t, []string{"-kernel", filepath.Join(plain, image.GenericKernel), "-initrd", changed, "-append", m.Cmdline}, 8*time.Minute,
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
		out, took := node.boot(t, []string{"-boot", "n"}, 30*time.Minute, func(c string) bool { return strings.Contains(c, joinFailed) || ready() })
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
			if err == nil && len(joined) == 1 && strings.Contains(nodes, " Ready "+kbin.Version) { // " Ready", not "NotReady"
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
