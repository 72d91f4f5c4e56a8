package join

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
)

// SecretName names the released secret holding a node's Info.
const SecretName = "kubernetes-join"

// Info is what a node needs to run kubeadm join: released only after the
// node attested (the token is a credential).
type Info struct {
	// APIServer is the control plane endpoint, host:port.
	APIServer string `json:"apiServer"`
	// Token is the bootstrap token, "<id>.<secret>".
	Token string `json:"token"`
	// CACertHashes pin the cluster CA (CAHash).
	CACertHashes []string `json:"caCertHashes"`
}

// Validate checks every field.
func (j Info) Validate() error {
	var errs []error
	if host, port, err := net.SplitHostPort(j.APIServer); err != nil || host == "" {
		errs = append(errs, fmt.Errorf("apiServer %q: want host:port", j.APIServer))
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		errs = append(errs, fmt.Errorf("apiServer %q: port %q is not 1-65535", j.APIServer, port))
	}
	if _, err := ParseToken(j.Token); err != nil {
		errs = append(errs, fmt.Errorf("token: %w", err))
	}
	if len(j.CACertHashes) == 0 {
		errs = append(errs, errors.New("caCertHashes: at least one is needed (kubeadm would otherwise trust any CA)"))
	}
	for _, h := range j.CACertHashes {
		if !ValidCAHash(h) {
			errs = append(errs, fmt.Errorf("caCertHashes: %q is not sha256:<64 hex digits>", h))
		}
	}
	return errors.Join(errs...)
}

// Marshal encodes j as the released secret's bytes.
func (j Info) Marshal() ([]byte, error) {
	if err := j.Validate(); err != nil {
		return nil, fmt.Errorf("kubernetes join: %w", err)
	}
	return json.Marshal(j)
}

// ParseInfo decodes and validates a released secret.
func ParseInfo(data []byte) (Info, error) {
	var j Info
	if err := json.Unmarshal(data, &j); err != nil {
		return Info{}, fmt.Errorf("kubernetes join secret: %w", err)
	}
	if err := j.Validate(); err != nil {
		return Info{}, fmt.Errorf("kubernetes join secret: %w", err)
	}
	return j, nil
}

// Args are the kubeadm arguments that join node with j (kubeadm join …).
func (j Info) Args(node string) []string {
	args := []string{"join", j.APIServer, "--token", j.Token}
	for _, h := range j.CACertHashes {
		args = append(args, "--discovery-token-ca-cert-hash", h)
	}
	if node != "" {
		args = append(args, "--node-name", node)
	}
	return args
}
