package rack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Kubernetes says which cluster the rack's nodes join and where their
// bootstrap token comes from. A node receives the join facts (endpoint,
// token, CA hashes) only inside its attested release.
type Kubernetes struct {
	// APIServer is the control plane endpoint nodes join (kubeadm join's
	// argument), host:port.
	APIServer string `yaml:"apiServer"`
	// CACertHashes pin the cluster CA ("sha256:<64 hex>", as `kubeadm token
	// create --print-join-command` prints). Required with token.file; with
	// token.kubeconfig racklet-boot also pins the kubeconfig's CA.
	CACertHashes []string `yaml:"caCertHashes,omitempty"`
	// Token is where each node's bootstrap token comes from.
	Token KubernetesToken `yaml:"token"`
}

// KubernetesToken is a token source: exactly one of Kubeconfig and File.
type KubernetesToken struct {
	// Kubeconfig lets racklet-boot create a fresh bootstrap token through
	// the cluster's API for each attested boot (it needs create on secrets
	// in kube-system). Relative to the config file's directory.
	Kubeconfig string `yaml:"kubeconfig,omitempty"`
	// TTL is the lifetime of each created token (default DefaultTokenTTL;
	// 1m to 24h). Only with Kubeconfig.
	TTL time.Duration `yaml:"ttl,omitempty"`
	// File holds one token the operator made (`kubeadm token create`),
	// shared by every node; readable by its owner only. Relative to the
	// config file's directory.
	File string `yaml:"file,omitempty"`
	// Value is File's token, read when the config is validated.
	Value string `yaml:"-"`
}

// DefaultTokenTTL is the lifetime of a token racklet-boot creates: long
// enough for a slow first boot to reach kubeadm join, short enough that a
// leaked release is soon worthless.
const DefaultTokenTTL = 30 * time.Minute

func (d *decoder) kubernetes(p **Kubernetes) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		k := &Kubernetes{}
		*p = k
		d.mapping(n, path, fields{
			"apiServer":    d.str(&k.APIServer),
			"caCertHashes": d.strList(&k.CACertHashes),
			"token": func(n *yaml.Node, path string) {
				d.mapping(n, path, fields{
					"kubeconfig": d.str(&k.Token.Kubeconfig),
					"ttl":        d.duration(&k.Token.TTL),
					"file":       d.str(&k.Token.File),
				})
			},
		})
	}
}

// kubernetes checks the kubernetes section and reads the token file.
func (v *validator) kubernetes() {
	k := v.c.Kubernetes
	if k == nil {
		return
	}
	if k.APIServer == "" {
		v.at("kubernetes.apiServer", "required: the control plane endpoint nodes join, host:port (like 10.0.0.2:6443)")
	} else if err := checkEndpoint(k.APIServer); err != nil {
		v.at("kubernetes.apiServer", "%q %v", k.APIServer, err)
	}
	for i, h := range k.CACertHashes {
		if !caHashRE.MatchString(h) {
			v.at(fmt.Sprintf("kubernetes.caCertHashes[%d]", i), "%q is not sha256:<64 lower-case hex digits> (kubeadm token create --print-join-command prints it)", h)
		}
	}
	t := &k.Token
	switch {
	case t.Kubeconfig != "" && t.File != "":
		v.at("kubernetes.token.file", "set only one of kubeconfig (racklet-boot creates tokens) or file (a token you made)")
	case t.Kubeconfig != "":
		orig := t.Kubeconfig
		t.Kubeconfig = absUnder(v.base, t.Kubeconfig)
		v.exists("kubernetes.token.kubeconfig", orig, t.Kubeconfig, false)
		if t.TTL == 0 {
			t.TTL = DefaultTokenTTL
		}
		if t.TTL < time.Minute || t.TTL > 24*time.Hour {
			v.at("kubernetes.token.ttl", "%s is outside 1m to 24h: a token must outlive a slow boot but not become a standing credential", t.TTL)
		}
	case t.File != "":
		if v.set("kubernetes.token.ttl") {
			v.at("kubernetes.token.ttl", "only tokens racklet-boot creates (token.kubeconfig) have a ttl here; a token file's lifetime was set when it was made")
		}
		v.tokenFile(t)
		if len(k.CACertHashes) == 0 {
			v.at("kubernetes.caCertHashes", "required with token.file: without the CA hash a node would trust whatever answers at apiServer")
		}
	default:
		v.at("kubernetes.token", "required: kubeconfig (racklet-boot creates a token per attested boot) or file (a token from kubeadm token create)")
	}
}

// tokenFile reads and checks an operator's token file, never echoing it.
func (v *validator) tokenFile(t *KubernetesToken) {
	orig := t.File
	t.File = absUnder(v.base, t.File)
	b, err := readKeyFile(t.File)
	if err != nil {
		v.at("kubernetes.token.file", "cannot read the token file %s: %v", orig, err)
		return
	}
	if st, err := os.Stat(t.File); err == nil && st.Mode().Perm()&0o077 != 0 {
		v.at("kubernetes.token.file", "%s holds a join credential but its mode is %04o: chmod 600 it", orig, st.Mode().Perm())
		return
	}
	tok := strings.TrimSpace(string(b))
	if !tokenRE.MatchString(tok) {
		v.at("kubernetes.token.file", "%s holds no bootstrap token (want 6 and 16 characters of a-z0-9 joined by a dot, as kubeadm token create prints)", orig)
		return
	}
	t.Value = tok
}

// The forms kubeadm writes (package kube/join parses them; rack imports no
// racklet package, so it checks the forms itself).
var (
	caHashRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	tokenRE  = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)
)

// checkEndpoint checks host:port with an IP address or DNS name as host.
func checkEndpoint(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("is not host:port (like 10.0.0.2:6443)")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("has port %q, not 1-65535", port)
	}
	if _, err := netip.ParseAddr(host); err != nil && !isDNSName(host) {
		return fmt.Errorf("has host %q, neither an IP address nor a DNS name", host)
	}
	return nil
}
