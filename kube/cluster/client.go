package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"

	"github.com/racklet/racklet-boot/kube/join"
)

// Client talks to a cluster's API with an operator's kubeconfig: it creates
// bootstrap tokens (which needs create on secrets in kube-system) and reads
// nodes.
type Client struct {
	api kubernetes.Interface
	// CAHashes are the hashes of the CA the kubeconfig trusts (empty when it
	// names none, e.g. a fake client in tests).
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
	api, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	c := &Client{api: api}
	if c.CAHashes, err = caHashes(cfg); err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return c, nil
}

// NewClientFor wraps an API client (a fake one in unit tests).
func NewClientFor(api kubernetes.Interface) *Client { return &Client{api: api} }

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
				bootstrapapi.BootstrapTokenExtraGroupsKey:      joinComma(groups),
				bootstrapapi.BootstrapTokenDescriptionKey:      "racklet-boot: kubeadm join of node " + r.Node + " after attestation",
			},
		}
		_, err := c.api.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, s, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return join.Token{}, fmt.Errorf("create bootstrap token for node %s: %w", r.Node, err)
		}
		return t, nil
	}
	return join.Token{}, fmt.Errorf("create bootstrap token for node %s: three random token ids already existed", r.Node)
}

func joinComma(s []string) string {
	out := ""
	for i, g := range s {
		if i > 0 {
			out += ","
		}
		out += g
	}
	return out
}
