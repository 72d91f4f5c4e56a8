package verifier

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/racklet/racklet-boot/attest"

	"github.com/racklet/racklet-boot/store"
)

// ErrUnknownNode is returned by providers for a node they do not know.
var ErrUnknownNode = errors.New("node not in the rack config")

// Expected computes what a node must have booted from its assigned image.
type Expected interface {
	Expected(ctx context.Context, node string) (attest.Measurements, error)
}

// ExpectedFunc adapts a function to Expected.
type ExpectedFunc func(ctx context.Context, node string) (attest.Measurements, error)

// Expected implements Expected.
func (f ExpectedFunc) Expected(ctx context.Context, node string) (attest.Measurements, error) {
	return f(ctx, node)
}

// NodeSecrets are what a node receives after a good attestation.
type NodeSecrets struct {
	JoinToken string `json:"joinToken"` // cluster join token
	DiskKey   []byte `json:"diskKey"`   // data-disk encryption key
	// KubernetesJoin is the kube/join Info JSON (attest.SecretKubernetesJoin),
	// made for this one release (a fresh bootstrap token): never stored.
	KubernetesJoin []byte `json:"-"`
}

// Secrets provides a node's secrets.
type Secrets interface {
	Secrets(ctx context.Context, node string) (NodeSecrets, error)
}

// SecretsFunc adapts a function to Secrets.
type SecretsFunc func(ctx context.Context, node string) (NodeSecrets, error)

// Secrets implements Secrets.
func (f SecretsFunc) Secrets(ctx context.Context, node string) (NodeSecrets, error) {
	return f(ctx, node)
}

// EventSink records events in a node's boot event log (store.Store satisfies it).
type EventSink interface {
	AddEvent(ctx context.Context, e store.Event) error
}

// SecretFile keeps per-node secrets in a JSON file (mode 0600), generating
// a random join token and 32-byte disk key the first time a node is asked for.
type SecretFile struct {
	path string
	mu   sync.Mutex
	m    map[string]NodeSecrets
}

var _ Secrets = (*SecretFile)(nil)

// OpenSecretFile loads path, or starts empty if it does not exist.
func OpenSecretFile(path string) (*SecretFile, error) {
	s := &SecretFile{path: path, m: map[string]NodeSecrets{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read node secrets: %w", err)
	}
	if err := json.Unmarshal(data, &s.m); err != nil {
		return nil, fmt.Errorf("node secret file %s is corrupt: %w", path, err)
	}
	return s, nil
}

// Secrets implements Secrets.
func (s *SecretFile) Secrets(ctx context.Context, node string) (NodeSecrets, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns, ok := s.m[node]; ok {
		return ns, nil
	}
	var tok [24]byte
	ns := NodeSecrets{DiskKey: make([]byte, 32)}
	rand.Read(tok[:])
	rand.Read(ns.DiskKey)
	ns.JoinToken = "racklet-join-" + base64.RawURLEncoding.EncodeToString(tok[:])
	s.m[node] = ns
	data, err := json.MarshalIndent(s.m, "", "  ")
	if err == nil {
		err = writeFileAtomic(s.path, append(data, '\n'), 0o600)
	}
	if err != nil {
		delete(s.m, node)
		return NodeSecrets{}, fmt.Errorf("save node secrets: %w", err)
	}
	return ns, nil
}
