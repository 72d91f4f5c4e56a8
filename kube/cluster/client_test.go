package cluster

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// fakeAPI is an API server stand-in for the client's error handling; the
// real API server is in TestTokenThroughAPI.
func fakeAPI(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+srv.URL+`", certificate-authority-data: `+base64.StdEncoding.EncodeToString(ca)+`}}]
users: [{name: u, user: {token: operator-token}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CAHashes) != 1 {
		t.Fatalf("CA hashes %v", c.CAHashes)
	}
	return c
}

func TestCreateTokenRetriesAClash(t *testing.T) {
	var mu sync.Mutex
	var posted []corev1.Secret
	c := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/api/v1/namespaces/kube-system/secrets" || r.Header.Get("Authorization") != "Bearer operator-token" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, 400)
			return
		}
		var s corev1.Secret
		json.NewDecoder(r.Body).Decode(&s)
		mu.Lock()
		posted = append(posted, s)
		n := len(posted)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(409)
			w.Write([]byte(`{"kind":"Status","status":"Failure","message":"secrets \"bootstrap-token-x\" already exists","reason":"AlreadyExists","code":409}`))
			return
		}
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(s)
	})
	tok, err := c.CreateToken(t.Context(), TokenRequest{Node: "pi-01", TTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(posted) != 2 {
		t.Fatalf("%d posts, want a retry after the clash", len(posted))
	}
	s := posted[1]
	exp, err := time.Parse(time.RFC3339, s.StringData["expiration"])
	if err != nil || time.Until(exp) < 14*time.Minute || time.Until(exp) > 16*time.Minute {
		t.Errorf("expiration %q (%v)", s.StringData["expiration"], err)
	}
	if s.Name != "bootstrap-token-"+tok.ID || s.Type != "bootstrap.kubernetes.io/token" || s.StringData["token-id"] != tok.ID ||
		s.StringData["token-secret"] != tok.Secret || s.StringData["usage-bootstrap-authentication"] != "true" ||
		s.StringData["auth-extra-groups"] != "system:bootstrappers:kubeadm:default-node-token" || s.Labels["racklet.io/node"] != "pi-01" {
		t.Errorf("posted secret %+v", s)
	}
}

func TestAPIErrorsSayWhy(t *testing.T) {
	c := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(403)
		w.Write([]byte(`{"kind":"Status","status":"Failure","message":"secrets is forbidden: User \"racklet\" cannot create resource \"secrets\" in the namespace \"kube-system\"","reason":"Forbidden","code":403}`))
	})
	_, err := c.CreateToken(t.Context(), TokenRequest{Node: "pi-01", TTL: time.Minute})
	if err == nil || !strings.Contains(err.Error(), `cannot create resource "secrets"`) || !strings.Contains(err.Error(), "node pi-01") {
		t.Errorf("CreateToken = %v", err)
	}
	if _, err := c.Nodes(t.Context()); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("Nodes = %v", err)
	}
}

func TestNodesDecodes(t *testing.T) {
	c := fakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"kind":"NodeList","apiVersion":"v1","items":[{"metadata":{"name":"pi-01"},"status":{"nodeInfo":{"kubeletVersion":"v1.37.2"},"conditions":[{"type":"Ready","status":"True"}]}}]}`))
	})
	nodes, err := c.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := nodes["pi-01"]; !got.Ready || got.Version != "v1.37.2" || len(nodes) != 1 {
		t.Errorf("Nodes = %+v", nodes)
	}
}
