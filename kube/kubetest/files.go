package kubetest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/racklet/racklet-boot/kube/join"
)

// files are the paths writeFiles made.
type files struct {
	controllerManager, scheduler string // kubeconfigs
	kubeadm                      string // kubeadm init configuration
	token                        string // the token in it
}

// writeFiles makes the PKI, the kubeconfigs and kubeadm's configuration,
// and sets c.CAHash and c.AdminKubeconfig.
func (c *ControlPlane) writeFiles(port int) (files, error) {
	var f files
	p, err := newPKI(filepath.Join(c.Dir, "pki"))
	if err != nil {
		return f, err
	}
	c.CAHash = join.CAHash(p.ca)
	addr := net.IP(c.o.Address.AsSlice())
	leaves := []leaf{
		{name: "apiserver", cn: "kube-apiserver", server: true,
			ips: []net.IP{addr, net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}},
		{name: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
		{name: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}},
		{name: "controller-manager", cn: "system:kube-controller-manager"},
		{name: "scheduler", cn: "system:kube-scheduler"},
	}
	for _, l := range leaves {
		if _, _, err := p.issue(l); err != nil {
			return f, err
		}
	}
	if _, _, err := p.keyPair("sa"); err != nil {
		return f, err
	}
	ca := p.path("ca.crt")
	kc := func(name, user string) (string, error) {
		return c.writeKubeconfig(name+".conf", user, ca, p.path(name+".crt"), p.path(name+".key"))
	}
	if c.AdminKubeconfig, err = kc("admin", "kubernetes-admin"); err != nil {
		return f, err
	}
	if f.controllerManager, err = kc("controller-manager", "system:kube-controller-manager"); err != nil {
		return f, err
	}
	if f.scheduler, err = kc("scheduler", "system:kube-scheduler"); err != nil {
		return f, err
	}
	f.token = join.NewToken().String()
	c.Token = f.token
	f.kubeadm = filepath.Join(c.Dir, "kubeadm.yaml")
	// kubeadm's phases refuse a loopback advertise address ("unable to
	// select an IP from lo network interface") and only validate it: the
	// v1beta4 configuration they upload holds no API endpoint of the node,
	// and they reach the API through the kubeconfig. A control plane on
	// loopback states TEST-NET-2's 198.51.100.1 there, which nothing dials.
	advertise := c.o.Address
	if advertise.IsLoopback() {
		advertise = netip.MustParseAddr("198.51.100.1")
	}
	cfg := fmt.Sprintf(kubeadmConfig, f.token, advertise, port, c.o.Bin.Version, c.Endpoint, filepath.Join(c.Dir, "pki"))
	return f, os.WriteFile(f.kubeadm, []byte(cfg), 0o600)
}

// kubeadmConfig is what kubeadm's init phases read: the ClusterConfiguration
// and KubeletConfiguration they upload for joining nodes (systemd cgroup
// driver, as the image's containerd is configured), and the bootstrap token
// they create.
const kubeadmConfig = `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: %s
  ttl: 24h
  groups: [system:bootstrappers:kubeadm:default-node-token]
  usages: [signing, authentication]
localAPIEndpoint:
  advertiseAddress: %s
  bindPort: %d
nodeRegistration:
  name: racklet-test-control-plane
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: %s
controlPlaneEndpoint: %s
certificatesDir: %s
networking:
  serviceSubnet: 10.96.0.0/12
  podSubnet: 10.244.0.0/16
  dnsDomain: cluster.local
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
`
