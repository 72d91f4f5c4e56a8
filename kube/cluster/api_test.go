package cluster_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/internal/testutil"
	"github.com/racklet/racklet-boot/kube/cluster"
	"github.com/racklet/racklet-boot/kube/kubebin"
	"github.com/racklet/racklet-boot/kube/kubetest"
)

// TestTokenThroughAPI creates a bootstrap token through a real API server
// and checks it with the real kubeadm: `kubeadm token list` shows it, the
// controller manager's bootstrap signer signs cluster-info for it (what
// kubeadm join's discovery verifies), and the CA hash kubeadm prints in its
// join command is the one racklet-boot computes.
func TestTokenThroughAPI(t *testing.T) {
	testutil.NeedTool(t, "go")
	etcd := testutil.NeedTool(t, "etcd")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	bin, err := kubebin.Build(ctx, kubebin.Options{Commands: kubebin.All})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cp, err := kubetest.Start(ctx, kubetest.Options{Bin: bin, Dir: t.TempDir(), Etcd: etcd})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	t.Logf("control plane up at %s in %s", cp.Endpoint, time.Since(start).Round(time.Second))

	c, err := cluster.NewClient(cp.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.CAHashes, []string{cp.CAHash}) {
		t.Errorf("CA hashes from the kubeconfig = %v, want [%s]", c.CAHashes, cp.CAHash)
	}
	tok, err := c.CreateToken(ctx, cluster.TokenRequest{Node: "pi-01", TTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateToken(ctx, cluster.TokenRequest{Node: "pi-01"}); err == nil {
		t.Error("a token with no TTL was created")
	}

	kubeadm := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, bin.Path(kubebin.Kubeadm), append(args, "--kubeconfig", cp.AdminKubeconfig)...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubeadm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	list := kubeadm("token", "list")
	var line string
	for _, l := range strings.Split(list, "\n") {
		if strings.HasPrefix(l, tok.ID+".") {
			line = l
		}
	}
	switch {
	case line == "":
		t.Fatalf("kubeadm token list does not show %s:\n%s", tok.ID, list)
	case !strings.Contains(line, "authentication,signing") || !strings.Contains(line, "node pi-01") ||
		!strings.Contains(line, "system:bootstrappers:kubeadm:default-node-token"):
		t.Errorf("kubeadm token list shows the token as:\n%s", line)
	case !strings.Contains(line, "9m") && !strings.Contains(line, "10m"):
		t.Errorf("token TTL is not about 10m:\n%s", line)
	}
	join := kubeadm("token", "create", "--print-join-command", "--ttl", "1m")
	if !strings.Contains(join, "--discovery-token-ca-cert-hash "+cp.CAHash) {
		t.Errorf("kubeadm's join command %q does not pin %s", join, cp.CAHash)
	}

	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, err := cp.Kubectl(ctx, "-n", "kube-public", "get", "configmap", "cluster-info", "-o", "jsonpath={.data.jws-kubeconfig-"+tok.ID+"}")
		if err == nil && strings.Count(strings.TrimSpace(out), ".") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster-info was not signed for %s within 2m: %q %v\n%s", tok.ID, out, err, cp.Logs("kube-controller-manager"))
		}
		time.Sleep(time.Second)
	}

	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 0 {
		t.Errorf("Nodes of a cluster with no kubelet = %v, %v", nodes, err)
	}

	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("not: a kubeconfig: ["), 0o600)
	if _, err := cluster.NewClient(bad); err == nil {
		t.Error("NewClient accepted a broken kubeconfig")
	}
}
