package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/attest"
	"github.com/racklet/racklet-boot/internal/netlab"
	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/kube/join"
	"github.com/racklet/racklet-boot/kube/kubebin"
	"github.com/racklet/racklet-boot/kube/kubetest"
)

// startControlPlane builds (or takes from the cache) the Kubernetes commands
// for the host and starts a control plane inside ns, on its loopback.
func startControlPlane(t *testing.T, ctx context.Context, ns netlab.Namespace) (*kubetest.ControlPlane, kubebin.Result) {
	t.Helper()
	etcd := testutil.NeedTool(t, "etcd")
	start := time.Now()
	bin, err := kubebin.Build(ctx, kubebin.Options{Commands: kubebin.All})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kubernetes %s commands ready in %s (built %v)", bin.Version, time.Since(start).Round(time.Second), bin.Built)
	start = time.Now()
	cp, err := kubetest.Start(ctx, kubetest.Options{Bin: bin, Dir: t.TempDir(), Etcd: etcd, Command: ns.Command})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Stop)
	t.Logf("control plane up at %s in %s", cp.Endpoint, time.Since(start).Round(time.Second))
	return cp, bin
}

// TestKubernetesJoinRelease: with a cluster in the rack config, an attested
// node receives the join facts — a bootstrap token racklet-boot created
// through the cluster's API for this boot, the endpoint and the CA hash —
// inside its sealed release; `kubeadm token list` shows that token. A node
// whose initramfs differs from the one racklet-boot serves is refused and no
// token is created for it.
func TestKubernetesJoinRelease(t *testing.T) {
	need(t, "ss")
	testutil.NeedTool(t, "go")
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Minute)
	defer cancel()
	dir := t.TempDir()
	srvNS := newHost(t, "k8s")
	cp, kbin := startControlPlane(t, ctx, srvNS)
	pi := newPiNode(t, ctx, dir, "cmdline.txt", "console=serial0,115200\n")
	srv := startServer(t, srvNS, dir, rackConfig("lo", "127.0.0.1", filepath.Join(dir, "data"), "mode: off",
		fmt.Sprintf("kubernetes:\n  apiServer: %s\n  token: {kubeconfig: %s, ttl: 10m}\nnodes:\n%s", cp.Endpoint, cp.AdminKubeconfig, pi.config())))

	secrets := filepath.Join(dir, "run")
	attestArgs := pi.attestArgs("console=serial0,115200", secrets, filepath.Join(dir, "data", "server.pub"))
	out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-agent"), attestArgs...)
	if err != nil {
		t.Fatalf("racklet-agent attest: %v\n%s\nserver:\n%s", err, out, srv.Output())
	}
	data, err := os.ReadFile(filepath.Join(secrets, attest.SecretKubernetesJoin))
	if err != nil {
		t.Fatalf("no %s released: %v\n%s", attest.SecretKubernetesJoin, err, out)
	}
	info, err := join.ParseInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	if info.APIServer != cp.Endpoint || len(info.CACertHashes) != 1 || info.CACertHashes[0] != cp.CAHash || info.Token == cp.Token {
		t.Errorf("released %+v; want endpoint %s, CA hash %s and a token made for this boot", info, cp.Endpoint, cp.CAHash)
	}
	tokens := func() []string {
		t.Helper()
		out, err := srvNS.Output(ctx, kbin.Path(kubebin.Kubeadm), "token", "list", "--kubeconfig", cp.AdminKubeconfig)
		if err != nil {
			t.Fatalf("kubeadm token list: %v\n%s", err, out)
		}
		var ids []string
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "node pi-01") {
				ids = append(ids, strings.Fields(l)[0])
			}
		}
		return ids
	}
	if ids := tokens(); len(ids) != 1 || ids[0] != info.Token {
		t.Errorf("kubeadm token list shows %v for pi-01, want the released token only", ids)
	}
	// racklet-boot asks the cluster about its nodes: pi-01 has no kubelet
	// here, so racklet-boot nodes shows it as not joined.
	for deadline := time.Now().Add(time.Minute); ; {
		out, err := srvNS.Output(ctx, filepath.Join(bin, "racklet-boot"), "nodes", "--data-dir", filepath.Join(dir, "data"), "--events", "0")
		if err == nil && strings.Contains(out, "not joined") {
			t.Logf("racklet-boot nodes:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("racklet-boot nodes does not show pi-01 as not joined after a minute: %v\n%s", err, out)
		}
		time.Sleep(2 * time.Second)
	}

	// The initramfs racklet-boot serves changes (a tampered or rebuilt one);
	// the node's HAT measured another: refused, and no token is made.
	writeFile(t, pi.boot, "initramfs8", "initramfs v2")
	os.RemoveAll(secrets)
	if _, err := hatAgent(ctx, bin, "power-cycle", "--hat", pi.hat); err != nil {
		t.Fatal(err)
	}
	out, err = srvNS.Output(ctx, filepath.Join(bin, "racklet-agent"), attestArgs...)
	if err == nil || !strings.Contains(out+err.Error(), "mismatch: initramfs") {
		t.Fatalf("attestation after the initramfs changed: %v\n%s", err, out)
	}
	if _, err := os.Stat(secrets); err == nil {
		t.Errorf("secrets written on a refusal")
	}
	if ids := tokens(); len(ids) != 1 {
		t.Errorf("after a refused attestation kubeadm token list shows %v for pi-01, want only the first boot's token", ids)
	}
}
