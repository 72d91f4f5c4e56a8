package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/racklet/racklet-boot/attest/verifier"
	"github.com/racklet/racklet-boot/inventory"
	"github.com/racklet/racklet-boot/kube/cluster"
	"github.com/racklet/racklet-boot/kube/join"
	"github.com/racklet/racklet-boot/rack"
)

// kubeSecrets adds the Kubernetes join facts to what an attested node
// receives when the rack config names a cluster: the verifier asks for
// secrets only after the quote proved the node booted its assigned image,
// so a token is created (or the operator's released) for attested boots
// only, one fresh token per release when racklet-boot creates them.
type kubeSecrets struct {
	base verifier.Secrets
	inv  *inventory.Live
	log  *slog.Logger

	mu      sync.Mutex
	clients map[string]*cluster.Client // by kubeconfig path
}

var _ verifier.Secrets = (*kubeSecrets)(nil)

// Secrets implements verifier.Secrets.
func (k *kubeSecrets) Secrets(ctx context.Context, node string) (verifier.NodeSecrets, error) {
	ns, err := k.base.Secrets(ctx, node)
	if err != nil {
		return ns, err
	}
	kc := k.inv.Load().Config().Kubernetes
	if kc == nil {
		return ns, nil
	}
	info, err := k.joinInfo(ctx, kc, node)
	if err != nil {
		return verifier.NodeSecrets{}, err
	}
	if ns.KubernetesJoin, err = info.Marshal(); err != nil {
		return verifier.NodeSecrets{}, err
	}
	ns.JoinToken = info.Token
	return ns, nil
}

// joinInfo makes node's join facts: the operator's token, or a new one
// created through the cluster's API with the configured TTL.
func (k *kubeSecrets) joinInfo(ctx context.Context, kc *rack.Kubernetes, node string) (join.Info, error) {
	info := join.Info{APIServer: kc.APIServer, Token: kc.Token.Value, CACertHashes: slices.Clone(kc.CACertHashes)}
	if kc.Token.Kubeconfig == "" {
		return info, nil
	}
	c, err := k.client(kc.Token.Kubeconfig)
	if err != nil {
		return info, err
	}
	tok, err := c.CreateToken(ctx, cluster.TokenRequest{Node: node, TTL: kc.Token.TTL})
	if err != nil {
		return info, err
	}
	k.log.Info("bootstrap token created for an attested node", "node", node, "token_id", tok.ID, "ttl", kc.Token.TTL)
	info.Token = tok.String()
	for _, h := range c.CAHashes {
		if !slices.Contains(info.CACertHashes, h) {
			info.CACertHashes = append(info.CACertHashes, h)
		}
	}
	return info, nil
}

// client returns the API client of a kubeconfig, made once per path.
func (k *kubeSecrets) client(path string) (*cluster.Client, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if c, ok := k.clients[path]; ok {
		return c, nil
	}
	c, err := cluster.NewClient(path)
	if err != nil {
		return nil, fmt.Errorf("kubernetes.token.kubeconfig: %w", err)
	}
	if k.clients == nil {
		k.clients = map[string]*cluster.Client{}
	}
	k.clients[path] = c
	return c, nil
}
