package nodejoin

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/racklet/racklet-boot/kube/join"
)

// fakeKubeadm writes a script that records its arguments and then runs body.
func fakeKubeadm(t *testing.T, body string) (path, argsFile string) {
	t.Helper()
	dir := t.TempDir()
	path, argsFile = filepath.Join(dir, "kubeadm"), filepath.Join(dir, "args")
	script := "#!/bin/sh\necho \"$@\" > " + argsFile + "\n" + body + "\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, argsFile
}

func writeSecret(t *testing.T, info join.Info) string {
	t.Helper()
	data, err := info.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), join.SecretName)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var info = join.Info{APIServer: "10.0.0.2:6443", Token: "abcdef.0123456789abcdef", CACertHashes: []string{"sha256:" + strings.Repeat("ab", 32)}}

func TestJoin(t *testing.T) {
	for _, tc := range []struct {
		name, script, wantErr string
		timeout               time.Duration
	}{
		{"joined", "echo 'This node has joined the cluster'", "", 0},
		{"refused", "echo '[preflight] Running pre-flight checks'; echo 'error execution phase preflight: couldn'\"'\"'t validate the identity of the API Server: token id \"abcdef\" is invalid'; echo 'To see the stack trace of this error execute with --v=5 or higher'; exit 1",
			`kubeadm join 10.0.0.2:6443: exit status 1: error execution phase preflight: couldn't validate the identity of the API Server: token id "abcdef" is invalid`, 0},
		{"hangs", "sleep 30", "timed out after 200ms", 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kubeadm, argsFile := fakeKubeadm(t, tc.script)
			secret := writeSecret(t, info)
			summary, err := Join(context.Background(), Options{Secret: secret, Kubeadm: kubeadm, Node: "pi-01", Timeout: tc.timeout})
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Join = %q, %v; want error %q", summary, err, tc.wantErr)
			}
			if err == nil && !strings.HasPrefix(summary, "joined 10.0.0.2:6443 in ") {
				t.Errorf("summary %q", summary)
			}
			args, _ := os.ReadFile(argsFile)
			want := "join 10.0.0.2:6443 --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash " + info.CACertHashes[0] + " --node-name pi-01\n"
			if tc.timeout == 0 && string(args) != want { // a killed kubeadm may not have got to write them
				t.Errorf("kubeadm got %q, want %q", args, want)
			}
			if _, err := os.Stat(secret); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the join facts are still on /run after use: %v", err)
			}
		})
	}
}

func TestJoinWithoutSecret(t *testing.T) {
	kubeadm, argsFile := fakeKubeadm(t, "true")
	_, err := Join(context.Background(), Options{Secret: filepath.Join(t.TempDir(), "none"), Kubeadm: kubeadm})
	if !errors.Is(err, ErrNoSecret) {
		t.Fatalf("Join = %v, want ErrNoSecret", err)
	}
	if _, err := os.Stat(argsFile); err == nil {
		t.Error("kubeadm ran with no join facts")
	}
}

func TestJoinBadSecret(t *testing.T) {
	kubeadm, argsFile := fakeKubeadm(t, "true")
	p := filepath.Join(t.TempDir(), "s")
	os.WriteFile(p, []byte(`{"apiServer":"10.0.0.2:6443","token":"not-a-token"}`), 0o600)
	if _, err := Join(context.Background(), Options{Secret: p, Kubeadm: kubeadm}); err == nil || !strings.Contains(err.Error(), "not a bootstrap token") {
		t.Fatalf("Join = %v", err)
	}
	if _, err := os.Stat(argsFile); err == nil {
		t.Error("kubeadm ran with bad join facts")
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Error("bad join facts were left on /run")
	}
}

func TestKeepThenJoin(t *testing.T) {
	data, err := info.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run", "racklet", "secrets")
	if err := Keep(map[string][]byte{"disk-key": []byte("k")}, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a node in no cluster got a secrets directory: %v", err)
	}
	if err := Keep(map[string][]byte{join.SecretName: []byte(`{"token":"x"}`)}, dir); err == nil {
		t.Error("Keep accepted malformed join facts")
	}
	if err := Keep(map[string][]byte{join.SecretName: data}, dir); err != nil {
		t.Fatal(err)
	}
	for p, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Join(dir, join.SecretName): 0o600} {
		if fi, err := os.Stat(p); err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v, %v; want mode %v", p, fi.Mode(), err, mode)
		}
	}
	kubeadm, argsFile := fakeKubeadm(t, "true")
	if _, err := Join(context.Background(), Options{Secret: filepath.Join(dir, join.SecretName), Kubeadm: kubeadm}); err != nil {
		t.Fatal(err)
	}
	if args, _ := os.ReadFile(argsFile); !strings.HasPrefix(string(args), "join 10.0.0.2:6443 --token ") {
		t.Errorf("kubeadm got %q", args)
	}
}
