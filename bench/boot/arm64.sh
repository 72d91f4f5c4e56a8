#!/usr/bin/env bash
# Boots the full Debian arm64 base (systemd) as CI boots the small one
# (TestNodeBootsDebianImageArm64): QEMU virt (TCG) with EDK2 PXE-boots from racklet-boot serve,
# loads the image's unified kernel image, attests with racklet-hat-sim, verifies its root and
# reaches multi-user.target and healthy. Prints the boot's time (a FIGURE line). The first run
# builds the full arm64 base (package scripts under qemu-user-static: several minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
log=$(mktemp /var/tmp/racklet-arm64-bench.XXXXXX)
trap 'rm -f "$log"' EXIT
go test -count=1 -tags bootbench -timeout 90m -run TestBootFigureFullArm64 -v ./integration >"$log" 2>&1 ||
  { tail -150 "$log" >&2; exit 1; }
grep -h 'FIGURE\|wall time\|image ready\|racklet-agent:' "$log"
