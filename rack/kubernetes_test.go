package rack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// kubeDir is bootDir plus admin.conf, a 0600 token file "join-token" and a
// 0644 one "open-token", all holding a well-formed token.
func kubeDir(t *testing.T) string {
	t.Helper()
	file := bootDir(t)
	dir := filepath.Dir(file)
	for name, mode := range map[string]os.FileMode{"admin.conf": 0o600, "join-token": 0o600, "open-token": 0o644, "bad-token": 0o600} {
		body := "abcdef.0123456789abcdef\n"
		if name == "bad-token" {
			body = "racklet-join-secret\n"
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	return file
}

var testCAHash = "sha256:" + strings.Repeat("0f", 32)

func TestKubernetesValid(t *testing.T) {
	file := kubeDir(t)
	base := filepath.Dir(file)
	node := []string{"nodes:", "  - {name: a, kind: rpi4, serial: 00000001, boot: {dir: boot}}"}
	for _, tc := range []struct {
		name  string
		lines []string
		want  *Kubernetes
	}{
		{"created tokens, default ttl", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  token: {kubeconfig: admin.conf}"},
			&Kubernetes{APIServer: "10.0.0.2:6443", Token: KubernetesToken{Kubeconfig: filepath.Join(base, "admin.conf"), TTL: DefaultTokenTTL}}},
		{"created tokens, ttl and pinned CA", []string{"kubernetes:", "  apiServer: cp.rack.lan:6443", "  caCertHashes: [" + testCAHash + "]", "  token: {kubeconfig: admin.conf, ttl: 2h}"},
			&Kubernetes{APIServer: "cp.rack.lan:6443", CACertHashes: []string{testCAHash}, Token: KubernetesToken{Kubeconfig: filepath.Join(base, "admin.conf"), TTL: 2 * time.Hour}}},
		{"operator's token", []string{"kubernetes:", "  apiServer: \"[fd00::2]:6443\"", "  caCertHashes: " + testCAHash, "  token: {file: join-token}"},
			&Kubernetes{APIServer: "[fd00::2]:6443", CACertHashes: []string{testCAHash}, Token: KubernetesToken{File: filepath.Join(base, "join-token"), Value: "abcdef.0123456789abcdef"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(withHeader(cat([]string{"  mode: off"}, tc.lines, node)...)), file)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, cfg.Kubernetes); d != "" {
				t.Errorf("kubernetes (-want +got):\n%s", d)
			}
		})
	}
	cfg, err := Parse([]byte(withHeader(cat([]string{"  mode: off"}, node)...)), file)
	if err != nil || cfg.Kubernetes != nil {
		t.Errorf("no kubernetes section: %+v, %v", cfg.Kubernetes, err)
	}
}

func TestKubernetesErrors(t *testing.T) {
	file := kubeDir(t)
	node := []string{"nodes:", "  - {name: a, kind: rpi4, serial: 00000001, boot: {dir: boot}}"}
	for _, tc := range []struct {
		name  string
		lines []string
		want  []want
	}{
		{"empty section", []string{"kubernetes: {}"},
			[]want{{7, "kubernetes.apiServer", "required"}, {7, "kubernetes.token", "required"}}},
		{"bad endpoint and hash", []string{"kubernetes:", "  apiServer: 10.0.0.2", "  caCertHashes: [sha256:00, \"SHA256:" + strings.Repeat("a", 64) + "\"]", "  token: {kubeconfig: admin.conf}"},
			[]want{{8, "kubernetes.apiServer", "is not host:port"}, {9, "kubernetes.caCertHashes[0]", "is not sha256:"}, {9, "kubernetes.caCertHashes[1]", "is not sha256:"}}},
		{"bad port and host", []string{"kubernetes:", "  apiServer: \"bad_host:99999\"", "  token: {kubeconfig: admin.conf}"},
			[]want{{8, "kubernetes.apiServer", "not 1-65535"}}},
		{"bad host", []string{"kubernetes:", "  apiServer: \"bad_host:6443\"", "  token: {kubeconfig: admin.conf}"},
			[]want{{8, "kubernetes.apiServer", "neither an IP address nor a DNS name"}}},
		{"both token sources", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  caCertHashes: [" + testCAHash + "]", "  token:", "    kubeconfig: admin.conf", "    file: join-token"},
			[]want{{12, "kubernetes.token.file", "set only one"}}},
		{"missing kubeconfig, ttl out of range", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  token: {kubeconfig: nope.conf, ttl: 48h}"},
			[]want{{9, "kubernetes.token.kubeconfig", "does not exist"}, {9, "kubernetes.token.ttl", "outside 1m to 24h"}}},
		{"token file without hash, with ttl", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  token: {file: join-token, ttl: 1h}"},
			[]want{{7, "kubernetes.caCertHashes", "required with token.file"}, {9, "kubernetes.token.ttl", "only tokens racklet-boot creates"}}},
		{"token file readable by all", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  caCertHashes: [" + testCAHash + "]", "  token: {file: open-token}"},
			[]want{{10, "kubernetes.token.file", "chmod 600"}}},
		{"token file of another shape", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  caCertHashes: [" + testCAHash + "]", "  token: {file: bad-token}"},
			[]want{{10, "kubernetes.token.file", "holds no bootstrap token"}}},
		{"token file missing", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  caCertHashes: [" + testCAHash + "]", "  token: {file: none}"},
			[]want{{10, "kubernetes.token.file", "cannot read the token file none"}}},
		{"unknown field", []string{"kubernetes:", "  apiServer: 10.0.0.2:6443", "  token: {kubeconfig: admin.conf, value: abcdef.0123456789abcdef}"},
			[]want{{9, "kubernetes.token.value", "unknown field"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, withHeader(cat([]string{"  mode: off"}, tc.lines, node)...), file, tc.want)
		})
	}
}

// TestKubernetesTokenNeverEchoed: a malformed token file's content must not
// land in an error message (it may be a real credential in the wrong shape).
func TestKubernetesTokenNeverEchoed(t *testing.T) {
	file := kubeDir(t)
	secret := "s3cr3t-credential-value"
	if err := os.WriteFile(filepath.Join(filepath.Dir(file), "bad-token"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte(withHeader("  mode: off", "kubernetes:", "  apiServer: 10.0.0.2:6443", "  caCertHashes: ["+testCAHash+"]",
		"  token: {file: bad-token}", "nodes:", "  - {name: a, kind: rpi4, serial: 00000001, boot: {dir: boot}}")), file)
	if err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("error %v (it must exist and not contain the file's content)", err)
	}
}
