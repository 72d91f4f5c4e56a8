package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/racklet/racklet-boot/agent"
	"github.com/racklet/racklet-boot/kube/join"
	"github.com/racklet/racklet-boot/kube/nodejoin"
)

// TestBootKeepsKubernetesJoin: the join facts released to an attested boot
// are left in the secrets directory for the booted OS (0600 in a 0700
// directory); racklet-agent kube-join then runs kubeadm join with them under
// the node's rack name and reports the result as the kubernetes stage.
func TestBootKeepsKubernetesJoin(t *testing.T) {
	info := join.Info{APIServer: "10.0.0.2:6443", Token: "abcdef.0123456789abcdef", CACertHashes: []string{"sha256:" + strings.Repeat("cd", 32)}}
	data, err := info.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, kubeadm, wantTail string
		ok                      bool
	}{
		{"joined", "echo 'This node has joined the cluster'", "kubernetes: joined 10.0.0.2:6443 in", true},
		{"refused", "echo 'error execution phase preflight: token id \"abcdef\" is invalid' >&2; exit 1", "kubernetes: FAILED; kubeadm join 10.0.0.2:6443: exit status 1: error execution phase preflight", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hat := newHAT(t)
			r := newRack(t, hat)
			r.kubeJoin = data
			m := r.machine(t, hat)
			dir := t.TempDir()
			secrets := filepath.Join(dir, "run", "racklet", "secrets")
			agent.Boot(t.Context(), agent.BootOptions{Machine: m, ServerKey: r.signer.Public(), RootDir: filepath.Join(dir, "root"),
				HandoverFile: filepath.Join(dir, "boot.json"), SecretDir: secrets})
			secret := filepath.Join(secrets, join.SecretName)
			for p, mode := range map[string]os.FileMode{secrets: 0o700 | os.ModeDir, secret: 0o600} {
				if fi, err := os.Stat(p); err != nil || fi.Mode() != mode {
					t.Fatalf("%s: %v; want mode %v", p, err, mode)
				}
			}
			if got, _ := os.ReadFile(secret); string(got) != string(data) {
				t.Errorf("kept %q, want the released %q", got, data)
			}

			kubeadm := filepath.Join(dir, "kubeadm")
			args := filepath.Join(dir, "args")
			if err := os.WriteFile(kubeadm, []byte("#!/bin/sh\necho \"$@\" > "+args+"\n"+tc.kubeadm+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			summary, err := agent.KubeJoin(t.Context(), agent.KubeJoinOptions{Handover: filepath.Join(dir, "boot.json"),
				Join: nodejoin.Options{Secret: secret, Kubeadm: kubeadm}})
			if (err == nil) != tc.ok {
				t.Fatalf("KubeJoin = %q, %v; want ok %v", summary, err, tc.ok)
			}
			if got, _ := os.ReadFile(args); !strings.HasSuffix(strings.TrimSpace(string(got)), "--node-name pc-01") {
				t.Errorf("kubeadm got %q, want the rack's node name", got)
			}
			if _, err := os.Stat(secret); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the join facts are still on /run after the join: %v", err)
			}
			evs, err := r.events.Events(t.Context(), "pc-01", 0)
			if err != nil {
				t.Fatal(err)
			}
			last := evs[len(evs)-1]
			if got := strings.TrimPrefix(last.Type, "agent.") + ": " + last.Detail; !strings.HasPrefix(got, tc.wantTail) {
				t.Errorf("timeline ends %q, want %q…", got, tc.wantTail)
			}
		})
	}
}

// TestBootWithoutKubernetes: a boot released no join facts leaves no
// secrets directory, and kube-join has nothing to do.
func TestBootWithoutKubernetes(t *testing.T) {
	hat := newHAT(t)
	r := newRack(t, hat)
	m := r.machine(t, hat)
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	agent.Boot(t.Context(), agent.BootOptions{Machine: m, ServerKey: r.signer.Public(), RootDir: filepath.Join(dir, "root"),
		HandoverFile: filepath.Join(dir, "boot.json"), SecretDir: secrets})
	if _, err := os.Stat(secrets); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a node in no cluster got %s: %v", secrets, err)
	}
	_, err := agent.KubeJoin(t.Context(), agent.KubeJoinOptions{Handover: filepath.Join(dir, "boot.json"),
		Join: nodejoin.Options{Secret: filepath.Join(secrets, join.SecretName), Kubeadm: "/bin/false"}})
	if !errors.Is(err, nodejoin.ErrNoSecret) {
		t.Errorf("KubeJoin without join facts = %v, want ErrNoSecret", err)
	}
}
