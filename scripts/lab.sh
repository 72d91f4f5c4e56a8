#!/usr/bin/env bash
# The main job: a throwaway LAN in network namespaces, racklet-boot serving it
# from an embedded example config, and a rack of simulated Raspberry Pis
# booting through DHCP and TFTP. Needs root (namespaces); tears itself down.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then bash scripts/deps.sh --lab; fi
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
go build -o bin/racklet-boot ./cmd/racklet-boot
exec ./bin/racklet-boot lab "$@"
