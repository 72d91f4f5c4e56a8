#!/usr/bin/env bash
# Builds kubelet and kubeadm for arm64 (the Pi image's architecture) from the
# pinned k8s.io/kubernetes, checks them from the file and runs them under
# qemu-aarch64-static for their version, printing how long the build took
# (cold, unless ${RACKLET_CACHE:-~/.cache/racklet}/kubernetes already has them)
# and the cached call. Then builds the arm64 image with the kubernetes profile
# (the arm64 base with debian.sh --profile kubernetes, racklet-image build
# --kubernetes v1.37.2) and checks the kubelet and kubeadm in its root the
# same way. Not part of go test ./...: the cold build costs about as much CPU
# as the host's whole control plane build, and the arm64 base's package
# scripts run under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
go test -count=1 -tags kubearm64 -timeout 90m -run TestBuildArm64Node -v ./kube/kubebin
go test -count=1 -tags kubearm64 -timeout 120m -run TestKubernetesImageArm64 -v ./integration
