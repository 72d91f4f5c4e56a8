// Package kubebin builds the Kubernetes commands racklet needs (kubelet and
// kubeadm for node images; kube-apiserver, kube-controller-manager,
// kube-scheduler and kubectl for the control plane tests bring up) from the
// k8s.io/kubernetes Go module, caches them by what decides their bytes, and
// checks that a binary is the pinned version for the wanted architecture.
//
// The module is built through a helper module (build/kubernetes in this
// repository): k8s.io/kubernetes replaces its 33 staging modules with
// ./staging/..., which a dependent module cannot see, so the helper module
// replaces each k8s.io/X with the matching published k8s.io/X v0.Y.Z. All the
// wanted commands are built in one `go build` per architecture, so the
// packages they share compile once. Binaries are static (CGO_ENABLED=0, as
// upstream releases them), so arm64 builds on an amd64 host with no C cross
// compiler.
//
// The cache key is the version, the architecture, the helper module's go.mod
// and go.sum, the Go toolchain version and the build flags; binaries land in
// ${RACKLET_CACHE:-$HOME/.cache/racklet}/kubernetes/<version>-<arch>-<key>/.
package kubebin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Commands built from k8s.io/kubernetes/cmd/<name>.
const (
	Kubelet               = "kubelet"
	Kubeadm               = "kubeadm"
	Kubectl               = "kubectl"
	KubeAPIServer         = "kube-apiserver"
	KubeControllerManager = "kube-controller-manager"
	KubeScheduler         = "kube-scheduler"
)

// Node are the commands a node image carries.
var Node = []string{Kubeadm, Kubelet}

// ControlPlane are the commands a control plane on the host needs, with
// kubectl to look at it.
var ControlPlane = []string{KubeAPIServer, KubeControllerManager, KubeScheduler, Kubectl}

// All are every command this package builds.
var All = append(slices.Clone(ControlPlane), Node...)

// ErrNoModule means the helper module was not found.
var ErrNoModule = errors.New("kubernetes helper module not found")

// ModuleDirName is where the helper module sits in this repository.
const ModuleDirName = "build/kubernetes"

// FindModule returns the helper module directory: dir/build/kubernetes for
// dir the working directory or any of its parents.
func FindModule() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find the kubernetes helper module: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		m := filepath.Join(d, ModuleDirName)
		if _, err := os.Stat(filepath.Join(m, "go.mod")); err == nil {
			return m, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no %s/go.mod in %s or its parents (run from a racklet-boot checkout, or name the module directory)", ErrNoModule, ModuleDirName, wd)
		}
	}
}

// DefaultCacheDir is ${RACKLET_CACHE:-$HOME/.cache/racklet}/kubernetes.
func DefaultCacheDir() string {
	if d := os.Getenv("RACKLET_CACHE"); d != "" {
		return filepath.Join(d, "kubernetes")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "racklet", "kubernetes")
	}
	return filepath.Join(os.TempDir(), "racklet-cache", "kubernetes")
}
