package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/racklet/racklet-boot/kube/join"
)

// Client talks to a cluster's API with an operator's kubeconfig: it creates
// bootstrap tokens (which needs create on secrets in kube-system) and reads
// nodes.
//
// client-go loads the kubeconfig and makes the authenticated HTTP client
// (TLS, client certificates, tokens, exec plugins); the two calls are plain
// JSON over it with the core/v1 types. client-go's typed clients register
// every API group's types (its kubernetes/scheme): with them racklet-boot
// grew from 26 MB to 63 MB (76 MB with the whole clientset), with this to
// 38 MB (measured on amd64).
type Client struct {
	http *http.Client
	host string
	// CAHashes are the hashes of the CA the kubeconfig trusts (empty when it
	// names none).
	CAHashes []string
}

// DefaultGroups are the groups a token authenticates as, beside
// system:bootstrappers: the group kubeadm's RBAC for joining nodes binds
// (`kubeadm init` creates those bindings).
var DefaultGroups = []string{"system:bootstrappers:kubeadm:default-node-token"}

// NewClient reads a kubeconfig file (its current context).
func NewClient(kubeconfig string) (*Client, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	cfg.Timeout = 15 * time.Second
	cfg.UserAgent = "racklet-boot"
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	c := &Client{http: hc, host: strings.TrimRight(cfg.Host, "/")}
	if c.CAHashes, err = caHashes(cfg); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}

func caHashes(cfg *rest.Config) ([]string, error) {
	ca := cfg.TLSClientConfig.CAData
	if len(ca) == 0 && cfg.TLSClientConfig.CAFile != "" {
		var err error
		if ca, err = os.ReadFile(cfg.TLSClientConfig.CAFile); err != nil {
			return nil, err
		}
	}
	if len(ca) == 0 {
		return nil, nil
	}
	return join.CAHashesPEM(ca)
}

// errAlreadyExists is a 409 from the API server.
var errAlreadyExists = errors.New("already exists")

// call sends in (if any) as JSON and decodes a 2xx answer into out; other
// answers become errors with the API server's message.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.host+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var st metav1.Status
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &st) == nil && st.Message != "" {
			msg = st.Message
		}
		if resp.StatusCode == http.StatusConflict {
			return fmt.Errorf("%s %s: %w: %s", method, path, errAlreadyExists, msg)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

// TokenRequest describes a token to create.
type TokenRequest struct {
	// Node the token is for (in its description and a label).
	Node string
	// TTL after which the API server refuses the token and the controller
	// manager's tokencleaner deletes it.
	TTL time.Duration
	// Groups the token authenticates as besides system:bootstrappers;
	// default DefaultGroups.
	Groups []string
}

// CreateToken creates a bootstrap token Secret, as `kubeadm token create`
// does, and returns the token. A clash with an existing token id is retried
// with a fresh token.
func (c *Client) CreateToken(ctx context.Context, r TokenRequest) (join.Token, error) {
	if r.TTL <= 0 {
		return join.Token{}, errors.New("bootstrap token: a TTL is required (an unlimited token is a standing credential)")
	}
	groups := r.Groups
	if len(groups) == 0 {
		groups = DefaultGroups
	}
	for range 3 {
		t := join.NewToken()
		s := &corev1.Secret{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{
				Name:      bootstrapapi.BootstrapTokenSecretPrefix + t.ID,
				Namespace: metav1.NamespaceSystem,
				Labels:    map[string]string{"app.kubernetes.io/managed-by": "racklet-boot", "racklet.io/node": r.Node},
			},
			Type: corev1.SecretType(bootstrapapi.SecretTypeBootstrapToken),
			StringData: map[string]string{
				bootstrapapi.BootstrapTokenIDKey:               t.ID,
				bootstrapapi.BootstrapTokenSecretKey:           t.Secret,
				bootstrapapi.BootstrapTokenExpirationKey:       time.Now().Add(r.TTL).UTC().Format(time.RFC3339),
				bootstrapapi.BootstrapTokenUsageAuthentication: "true",
				bootstrapapi.BootstrapTokenUsageSigningKey:     "true",
				bootstrapapi.BootstrapTokenExtraGroupsKey:      strings.Join(groups, ","),
				bootstrapapi.BootstrapTokenDescriptionKey:      "racklet-boot: kubeadm join of node " + r.Node + " after attestation",
			},
		}
		err := c.call(ctx, http.MethodPost, "/api/v1/namespaces/kube-system/secrets", s, nil)
		if errors.Is(err, errAlreadyExists) {
			continue
		}
		if err != nil {
			return join.Token{}, fmt.Errorf("create bootstrap token for node %s: %w", r.Node, err)
		}
		return t, nil
	}
	return join.Token{}, fmt.Errorf("create bootstrap token for node %s: three random token ids already existed", r.Node)
}
