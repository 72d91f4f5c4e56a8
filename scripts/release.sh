#!/usr/bin/env bash
# Makes a release into dist/ (or --dir DIR): static racklet binaries for
# linux/amd64 and linux/arm64, SHA256SUMS, an SPDX SBOM, and racklet-boot as a
# multi-platform OCI image (an OCI layout in DIR/oci, tagged with the version)
# signed with --sign-key. No Docker daemon: the image is built in Go.
#
#   RACKLET_KEY_PASSWORD=… bash scripts/release.sh --sign-key release.key
#   bash scripts/release.sh --sign-key release.key --push registry.lan:5000/racklet/racklet-boot:v0.3.0
#
# VERSION defaults to `git describe`; SOURCE_DATE_EPOCH to the commit's time,
# so two runs on one commit give the same binaries, SBOM and image digest
# (only the signature differs: ECDSA signatures are randomised). Then check it:
#   (cd dist && sha256sum -c SHA256SUMS)
#   racklet-image verify oci-layout:dist/oci:$VERSION --key release.pub
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
args=("$@")
case " $* " in *" --dir "*) ;; *) args+=(--dir dist) ;; esac
exec go run ./internal/release/cmd/racklet-release --version "$version" "${args[@]}"
