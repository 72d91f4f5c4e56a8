// Package profile is the Kubernetes profile of racklet-image: one line in the
// image spec (`kubernetes: {version: v1.37.2}`) makes the image a node that
// joins a cluster on its first boot with no manual step.
//
// The profile adds to the root file system:
//   - kubelet and kubeadm for the image's architecture, built from the pinned
//     k8s.io/kubernetes module (package kubebin), in /usr/bin;
//   - the kernel modules (overlay, br_netfilter) and sysctls (bridged traffic
//     through iptables, IPv4 forwarding) Kubernetes needs, loaded by systemd
//     at boot (files/etc/modules-load.d, files/etc/sysctl.d);
//   - containerd's configuration: systemd cgroup driver (matching the
//     kubelet's on cgroup v2), Debian's CNI plugin directory, and a CNI
//     template containerd renders with the node's pod CIDR until a cluster
//     network add-on installs its own (files/etc/containerd);
//   - the kubelet unit with kubeadm's drop-in, and racklet-kube-join.service,
//     which runs `racklet-agent kube-join` once: kubeadm join with the join
//     facts released after attestation, its result reported to racklet-boot;
//   - containerd's state on tmpfs (var-lib-containerd.mount, required by
//     containerd.service): the root is an overlay, and overlayfs (containerd's
//     snapshotter) cannot stack its upper directory on one;
//   - swap.target masked: the kubelet refuses to run with swap on.
//
// It appends CmdlineArgs to the kernel command line (the memory cgroup is off
// by default on Raspberry Pi kernels; cgroup v2 only), and the base image
// must carry Debian's containerd, runc and CNI plugins (BasePackages; the base
// builder's kubernetes package set installs them; CheckBase tells what is
// missing).
package profile

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/racklet/racklet-boot/kube/kubebin"
)

// Spec is the kubernetes: section of an image spec.
type Spec struct {
	// Version of kubelet and kubeadm, "v1.37.2": the version the helper
	// module pins (kubebin).
	Version string `yaml:"version" json:"version"`
}

var versionRE = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+$`)

// Validate checks the version's form (the build checks it is the pinned one).
func (s Spec) Validate() error {
	if !versionRE.MatchString(s.Version) {
		return fmt.Errorf("kubernetes.version %q: want a release like v1.37.2", s.Version)
	}
	return nil
}

// CmdlineArgs are appended to the image's kernel command line.
var CmdlineArgs = []string{"cgroup_enable=memory", "cgroup_memory=1", "systemd.unified_cgroup_hierarchy=1"}

// BasePackages are the Debian packages the base must have installed for the
// profile: the container runtime, CNI plugins, and what kubeadm join's
// preflight checks and kube-proxy use.
var BasePackages = []string{"containerd", "runc", "containernetworking-plugins", "iptables", "conntrack", "ethtool", "socat", "kmod", "iproute2", "mount"}

// required maps files the profile relies on in the base to their package,
// at the paths the Debian packages install them (Debian 12 merges /usr, so
// /lib and /sbin paths resolve through its relative symlinks either way).
var required = map[string]string{
	"usr/bin/containerd":                    "containerd",
	"lib/systemd/system/containerd.service": "containerd",
	"usr/sbin/runc":                         "runc",
	"usr/lib/cni/bridge":                    "containernetworking-plugins",
	"usr/lib/cni/host-local":                "containernetworking-plugins",
	"usr/lib/cni/loopback":                  "containernetworking-plugins",
	"usr/lib/cni/portmap":                   "containernetworking-plugins",
	"usr/sbin/iptables":                     "iptables",
	"usr/sbin/conntrack":                    "conntrack",
	"sbin/modprobe":                         "kmod",
	"bin/systemctl":                         "systemd",
	"lib/systemd/systemd":                   "systemd",
}

// ErrBase means the base image lacks what the profile needs.
var ErrBase = errors.New("the base image lacks what the kubernetes profile needs")

// CheckBase checks that root (the base's flattened root file system) has
// every file the profile relies on; the error names the missing Debian
// packages.
func CheckBase(root fs.FS) error {
	missing := map[string][]string{}
	for p, pkg := range required {
		if !exists(root, p) {
			missing[pkg] = append(missing[pkg], "/"+p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	var pkgs []string
	for pkg, files := range missing {
		sort.Strings(files)
		pkgs = append(pkgs, fmt.Sprintf("%s (%s)", pkg, strings.Join(files, ", ")))
	}
	sort.Strings(pkgs)
	return fmt.Errorf("%w: install %s; examples/base/debian.sh --profile kubernetes builds such a base", ErrBase, strings.Join(pkgs, "; "))
}

// exists reports whether root has an entry at p, without following a
// symbolic link at p itself (Debian's alternatives links are absolute).
func exists(root fs.FS, p string) bool {
	dir, name := path.Split(p)
	ents, err := fs.ReadDir(root, strings.TrimSuffix(dir, "/"))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if e.Name() == name {
			return true
		}
	}
	return false
}

//go:embed all:files
var files embed.FS

// File is one entry the profile adds to the root file system.
type File struct {
	Path   string      // in the root, without a leading slash
	Mode   fs.FileMode // permission bits (regular files)
	Data   []byte      // content of a regular file from the profile
	Source string      // a host file copied in instead (the binaries)
	Link   string      // the target of a symbolic link
}

// Units the profile enables, as `systemctl enable` would (WantedBy links).
var enabled = []string{"containerd.service", "kubelet.service", "racklet-kube-join.service"}

// Files returns what the profile adds for bin's architecture: bin must hold
// kubelet and kubeadm (kubebin.Build with kubebin.Node), checked here.
func Files(bin kubebin.Result) ([]File, error) {
	var out []File
	for _, c := range kubebin.Node {
		if err := kubebin.Check(bin.Path(c), c, bin.Version, bin.Arch); err != nil {
			return nil, fmt.Errorf("kubernetes profile: %w", err)
		}
		out = append(out, File{Path: "usr/bin/" + c, Mode: 0o755, Source: bin.Path(c)})
	}
	err := fs.WalkDir(files, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		out = append(out, File{Path: strings.TrimPrefix(p, "files/"), Mode: 0o644, Data: data})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes profile: %w", err)
	}
	for _, u := range enabled {
		unitDir := "usr/lib/systemd/system/"
		if u == "containerd.service" {
			unitDir = "lib/systemd/system/" // where Debian's package puts it
		}
		out = append(out, File{Path: "etc/systemd/system/multi-user.target.wants/" + u, Link: "/" + unitDir + u})
	}
	out = append(out, File{Path: "etc/systemd/system/swap.target", Link: "/dev/null"})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
