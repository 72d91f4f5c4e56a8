#!/usr/bin/env bash
# Installs the Debian packages the tests, the lab and the benchmarks use:
# real peers nobody here wrote (DHCP and TFTP clients, dnsmasq, QEMU and its
# firmware, squashfs/verity/FAT/partition tools, a registry, skopeo, nginx), and
# what examples/base/debian.sh builds Debian bases with (mmdebstrap; arm64
# package scripts under qemu-user-static through binfmt_misc; the host's depmod),
# etcd for the Kubernetes control plane the tests start.
# Run as root on Debian 12; a no-op for packages already installed.
set -euo pipefail
pkgs=(
  iproute2 busybox-static udhcpc isc-dhcp-client dnsmasq-base kea-admin tshark
  curl atftp tftp-hpa tftpd-hpa nginx-light ndisc6
  qemu-system-x86 ipxe-qemu qemu-system-arm qemu-efi-aarch64 cpio zstd kmod
  squashfs-tools cryptsetup-bin dmsetup dosfstools mtools fdisk
  mount e2fsprogs
  skopeo docker-registry openssl
  mmdebstrap arch-test qemu-user-static binfmt-support
  chromium
  systemd  # systemd-analyze: examples/systemd's unit is verified with it
  jq       # docs/real-rack.md reads racklet-boot's JSON with it
  etcd-server
)
# --lab: only what `racklet-boot lab` needs (namespaces; dnsmasq as the router in proxy mode).
lab=0
if [ "${1:-}" = --lab ]; then
  lab=1
  pkgs=(iproute2 dnsmasq-base)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages: ${missing[*]} (run this script as root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts these services on install where an init system runs; the
  # tests start their own instances on their own addresses and ports.
  for svc in tftpd-hpa nginx docker-registry etcd; do
    command -v service >/dev/null && service "$svc" stop >/dev/null 2>&1 || true
  done
fi
# cosign, the reference peer for image signatures: not packaged by Debian 12,
# built from the Go module proxy (about 4-6 minutes from a cold cache).
if [ "$lab" = 0 ] && ! command -v cosign >/dev/null; then
  echo "deps: building cosign v2.6.5 with go install (a few minutes)" >&2
  GOBIN=/usr/local/bin go install github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5
fi
