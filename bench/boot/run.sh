#!/usr/bin/env bash
# The node boot path's figures (issue 11), in one run on this machine:
#   - a Debian base build, cached (examples/base/debian.sh run twice: the second is the figure;
#     target <= 10 s);
#   - the initramfs's size against the kernel's, per architecture (target <= 1/4);
#   - boot to the init marker with racklet's verified root vs the same kernel with a plain,
#     unverified busybox initramfs, x86-64 QEMU, rounds alternating (target <= 2 s more);
#   - the agent's root fetch vs curl of the same file from the same server (target >= 0.9x).
# Lines starting FIGURE are the results. Needs root (namespaces, mmdebstrap, QEMU) and the
# Debian packages of scripts/deps.sh. ROUNDS sets the boot rounds (default 3).
# bench/boot/arm64.sh boots the full Debian arm64 base through EDK2 and its UKI.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
work=$(mktemp -d /var/tmp/racklet-boot-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

for args in "--arch amd64" "--arch amd64 --small" "--arch arm64 --small"; do
  # shellcheck disable=SC2086 # word splitting of args is meant
  bash examples/base/debian.sh $args --out "$work/base" >/dev/null 2>"$work/first.log" || { cat "$work/first.log" >&2; exit 1; }
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  bash examples/base/debian.sh $args --out "$work/base" >/dev/null 2>"$work/second.log"
  ms=$((($(date +%s%N) - start) / 1000000))
  echo "FIGURE base $args: first call: $(grep -o '\(built\|cached\) [^:]* in [0-9.]* s' "$work/first.log"); cached call $((ms / 1000)).$(printf %03d $((ms % 1000))) s (target <= 10 s)"
done

go test -count=1 -tags bootbench -timeout 60m -run 'TestBootFigureSizes|TestBootFigureVerifiedVsPlain' -v ./integration >"$work/boot.log" 2>&1 ||
  { tail -100 "$work/boot.log" >&2; exit 1; }
grep -h '^FIGURE\|round [0-9]' "$work/boot.log"

go test -count=1 -run XXX -bench FetchVsCurl -benchtime 1x ./agent >"$work/fetch.log" 2>&1 || { cat "$work/fetch.log" >&2; exit 1; }
echo "FIGURE root fetch, agent vs curl (loopback, 256 MiB, 5 rounds alternating):"
grep -h 'Benchmark\|ratio\|MB/s' "$work/fetch.log" | sed 's/^/  /'
