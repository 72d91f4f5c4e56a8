// Package kubetest starts a real Kubernetes control plane on the host for
// tests: Debian's etcd, and kube-apiserver, kube-controller-manager and
// kube-scheduler built from the pinned k8s.io/kubernetes (package kubebin),
// with a CA and certificates made for the run. The cluster-side objects a
// kubeadm join needs (cluster-info signed by the bootstrap signer, the
// kubeadm and kubelet configs, the RBAC for bootstrap tokens) are made by
// the real kubeadm's init phases, so a node joins it exactly as it would
// join a kubeadm cluster. Every wait is bounded; Stop ends every process.
package kubetest

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/racklet/racklet-boot/kube/join"
	"github.com/racklet/racklet-boot/kube/kubebin"
)

// Options configure a control plane. Bin and Dir are required.
type Options struct {
	// Bin holds kube-apiserver, kube-controller-manager, kube-scheduler,
	// kubectl and kubeadm for the host (kubebin.Build with kubebin.All).
	Bin kubebin.Result
	// Dir receives the certificates, kubeconfigs, etcd data and one log
	// file per process.
	Dir string
	// Address is where the API server listens and what it advertises (the
	// address nodes join); default 127.0.0.1.
	Address netip.Addr
	// Etcd is the etcd binary; default etcd on PATH (Debian's etcd-server).
	Etcd string
	// Command starts a process; default exec.CommandContext. Pass
	// netlab.Namespace.Command to run the control plane in a namespace.
	Command func(ctx context.Context, name string, args ...string) *exec.Cmd
	// StartTimeout bounds the start (default 5 minutes: the API server's
	// first start is slow on a busy 2-core machine).
	StartTimeout time.Duration
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Endpoint is the API server's host:port, as kubeadm join takes it.
	Endpoint string
	// CAHash pins the cluster CA (--discovery-token-ca-cert-hash).
	CAHash string
	// Token is the bootstrap token kubeadm's init phase created (24 h), as
	// an operator would supply one.
	Token string
	// AdminKubeconfig is a cluster-admin kubeconfig file.
	AdminKubeconfig string
	// Dir is Options.Dir.
	Dir string

	o      Options
	cancel context.CancelFunc
	procs  []*exec.Cmd
}

// Start brings up etcd, the API server, the controller manager and the
// scheduler, then runs kubeadm's init phases that prepare joins. On error
// everything started is stopped again.
func Start(ctx context.Context, o Options) (_ *ControlPlane, err error) {
	if o.Dir == "" || o.Bin.Dir == "" {
		return nil, errors.New("kubetest: Options.Dir and Options.Bin are required")
	}
	if !o.Address.IsValid() {
		o.Address = netip.MustParseAddr("127.0.0.1")
	}
	if o.Etcd == "" {
		if o.Etcd, err = exec.LookPath("etcd"); err != nil {
			return nil, fmt.Errorf("kubetest: etcd (Debian's etcd-server): %w", err)
		}
	}
	if o.Command == nil {
		o.Command = exec.CommandContext
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 5 * time.Minute
	}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	run, cancel := context.WithCancel(context.Background())
	c := &ControlPlane{Dir: o.Dir, o: o, cancel: cancel,
		Endpoint: net.JoinHostPort(o.Address.String(), strconv.Itoa(ports[0]))}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ctx, stop := context.WithTimeout(ctx, o.StartTimeout)
	defer stop()
	files, err := c.writeFiles(ports[0])
	if err != nil {
		return nil, fmt.Errorf("kubetest: certificates and kubeconfigs: %w", err)
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[2])
	if err := c.start(run, "etcd", o.Etcd,
		"--name=default", "--data-dir="+filepath.Join(o.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--listen-metrics-urls=http://127.0.0.1:"+strconv.Itoa(ports[3])); err != nil {
		return nil, err
	}
	pki := filepath.Join(o.Dir, "pki")
	p := func(name string) string { return filepath.Join(pki, name) }
	if err := c.start(run, "kube-apiserver", o.Bin.Path(kubebin.KubeAPIServer),
		"--etcd-servers="+etcdURL,
		"--advertise-address="+o.Address.String(), "--bind-address="+o.Address.String(),
		"--secure-port="+strconv.Itoa(ports[0]),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--kubelet-client-certificate="+p("apiserver-kubelet-client.crt"), "--kubelet-client-key="+p("apiserver-kubelet-client.key"),
		"--kubelet-preferred-address-types=InternalIP,Hostname",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p("sa.pub"), "--service-account-signing-key-file="+p("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/12",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--enable-bootstrap-token-auth=true", "--allow-privileged=true",
		"--cert-dir="+filepath.Join(o.Dir, "apiserver-certs"),
		// The kubernetes Service's endpoint may not be a loopback address:
		// on loopback, nothing reconciles it (no pod here needs it).
		"--endpoint-reconciler-type="+map[bool]string{true: "none", false: "lease"}[o.Address.IsLoopback()]); err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	if err := c.start(run, "kube-controller-manager", o.Bin.Path(kubebin.KubeControllerManager),
		"--kubeconfig="+files.controllerManager, "--authentication-kubeconfig="+files.controllerManager,
		"--authorization-kubeconfig="+files.controllerManager,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[4]),
		"--leader-elect=false", "--use-service-account-credentials=true",
		"--controllers=*,bootstrapsigner,tokencleaner",
		// Pod CIDRs per node: the image's CNI template takes the node's.
		"--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16", "--service-cluster-ip-range=10.96.0.0/12",
		"--cluster-signing-cert-file="+p("ca.crt"), "--cluster-signing-key-file="+p("ca.key"),
		"--root-ca-file="+p("ca.crt"), "--service-account-private-key-file="+p("sa.key"),
		"--cert-dir="+filepath.Join(o.Dir, "controller-manager-certs")); err != nil {
		return nil, err
	}
	if err := c.start(run, "kube-scheduler", o.Bin.Path(kubebin.KubeScheduler),
		"--kubeconfig="+files.scheduler, "--authentication-kubeconfig="+files.scheduler,
		"--authorization-kubeconfig="+files.scheduler,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[5]), "--leader-elect=false"); err != nil {
		return nil, err
	}
	for _, phase := range [][]string{{"upload-config", "kubeadm"}, {"upload-config", "kubelet"}, {"bootstrap-token", "--skip-token-print"}} {
		args := append([]string{"init", "phase"}, phase...)
		args = append(args, "--config="+files.kubeadm, "--kubeconfig="+c.AdminKubeconfig, "-v=1")
		if out, err := c.run(ctx, o.Bin.Path(kubebin.Kubeadm), args...); err != nil {
			return nil, fmt.Errorf("kubetest: kubeadm %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	tok, err := join.ParseToken(files.token)
	if err != nil {
		return nil, err
	}
	if err := c.waitSigned(ctx, tok.ID); err != nil {
		return nil, err
	}
	return c, nil
}

// Kubectl runs kubectl as cluster admin and returns its standard output.
func (c *ControlPlane) Kubectl(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"--kubeconfig=" + c.AdminKubeconfig, "--request-timeout=20s"}, args...)
	out, err := c.run(ctx, c.o.Bin.Path(kubebin.Kubectl), args...)
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args[2:], " "), err, strings.TrimSpace(out))
	}
	return out, nil
}

// Stop ends every process (SIGTERM, then SIGKILL after 10 s).
func (c *ControlPlane) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
	c.cancel()
}

// Logs returns the end of a component's log ("kube-apiserver", "etcd", …).
func (c *ControlPlane) Logs(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, name+".log"))
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// start starts a long-running process logging to Dir/name.log.
func (c *ControlPlane) start(ctx context.Context, name, bin string, args ...string) error {
	log, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := c.o.Command(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

// run runs a short command and returns its combined output.
func (c *ControlPlane) run(ctx context.Context, bin string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := c.o.Command(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// alive reports the first started process that has exited.
func (c *ControlPlane) alive() error {
	for _, p := range c.procs {
		var ws syscall.WaitStatus
		pid, _ := syscall.Wait4(p.Process.Pid, &ws, syscall.WNOHANG, nil)
		if pid == p.Process.Pid {
			name := filepath.Base(p.Path)
			if len(p.Args) > 3 && p.Args[0] == "ip" { // ip netns exec NS cmd …
				name = filepath.Base(p.Args[4])
			}
			return fmt.Errorf("kubetest: %s exited (%v); its log ends:\n%s", name, ws, c.Logs(name))
		}
	}
	return nil
}

// poll calls f every second until it returns nil, a process dies or ctx ends.
func (c *ControlPlane) poll(ctx context.Context, what string, f func() error) error {
	var last error
	for {
		if last = f(); last == nil {
			return nil
		}
		if err := c.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubetest: %s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(time.Second):
		}
	}
}

func (c *ControlPlane) waitReady(ctx context.Context) error {
	return c.poll(ctx, "API server ready", func() error {
		out, err := c.Kubectl(ctx, "get", "--raw=/readyz")
		if err == nil && strings.TrimSpace(out) != "ok" {
			err = fmt.Errorf("readyz: %s", out)
		}
		return err
	})
}

// waitSigned waits for the controller manager's bootstrap signer to sign
// cluster-info for token id: kubeadm join's discovery needs that signature.
func (c *ControlPlane) waitSigned(ctx context.Context, id string) error {
	return c.poll(ctx, "cluster-info signed for token "+id, func() error {
		out, err := c.Kubectl(ctx, "-n", "kube-public", "get", "configmap", "cluster-info", "-o", "jsonpath={.data.jws-kubeconfig-"+id+"}")
		if err == nil && strings.TrimSpace(out) == "" {
			err = errors.New("not signed yet")
		}
		return err
	})
}

// freePorts returns n distinct TCP ports free on the host's loopback (a
// fresh network namespace has them free too).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubetest: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var kubeconfigTmpl = template.Must(template.New("kubeconfig").Parse(`apiVersion: v1
kind: Config
clusters:
- name: racklet-test
  cluster:
    server: https://{{.Endpoint}}
    certificate-authority-data: {{.CA}}
users:
- name: {{.User}}
  user:
    client-certificate-data: {{.Cert}}
    client-key-data: {{.Key}}
contexts:
- name: {{.User}}@racklet-test
  context: {cluster: racklet-test, user: {{.User}}}
current-context: {{.User}}@racklet-test
`))

// writeKubeconfig writes a kubeconfig for the client certificate crt/key.
func (c *ControlPlane) writeKubeconfig(name, user, caPEM, crt, key string) (string, error) {
	b64 := func(path string) (string, error) {
		b, err := os.ReadFile(path)
		return base64.StdEncoding.EncodeToString(b), err
	}
	v := map[string]string{"Endpoint": c.Endpoint, "User": user}
	var err error
	if v["CA"], err = b64(caPEM); err != nil {
		return "", err
	}
	if v["Cert"], err = b64(crt); err != nil {
		return "", err
	}
	if v["Key"], err = b64(key); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := kubeconfigTmpl.Execute(&buf, v); err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, name)
	return path, os.WriteFile(path, buf.Bytes(), 0o600)
}
