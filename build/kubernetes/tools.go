//go:build tools

// Package tools pins the Kubernetes commands racklet builds from the
// k8s.io/kubernetes module: kubelet and kubeadm for node images, the control
// plane and kubectl for tests. kube/kubebuild builds them all in one go build.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
