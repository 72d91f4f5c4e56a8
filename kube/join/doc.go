// Package join holds what a node needs to join a Kubernetes cluster with
// kubeadm, with no dependency on the Kubernetes libraries (the node agent and
// the rack config import it): bootstrap tokens, the CA public-key hash
// kubeadm pins discovery to, and Info, the join facts a node receives only
// inside an attested release, as JSON in the released secret named
// SecretName:
//
//	{"apiServer":"10.0.0.2:6443","token":"abcdef.0123456789abcdef",
//	 "caCertHashes":["sha256:6d8f…"]}
//
// which the node turns into (Info.Args)
// `kubeadm join 10.0.0.2:6443 --token abcdef.0123456789abcdef
// --discovery-token-ca-cert-hash sha256:6d8f… --node-name pi-01`.
package join
