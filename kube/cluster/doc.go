// Package cluster is racklet-boot's client of the Kubernetes cluster its
// nodes join, with an operator's kubeconfig: it creates kubeadm bootstrap
// tokens through the API (a Secret of type bootstrap.kubernetes.io/token in
// kube-system, as `kubeadm token create` writes it) and reads back each
// node's state (joined, Ready, kubelet version). What a node receives is
// package join's Info.
package cluster
