#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) base image for racklet-image from the Debian archive, as an
# OCI layout, and prints its reference:
#
#   bash examples/base/debian.sh --arch arm64|amd64 --out DIR [--small | --profile P] [--rebuild]
#   -> oci-layout:DIR:bookworm-ARCH            (bookworm-ARCH-small with --small,
#                                               bookworm-ARCH-kubernetes with --profile kubernetes)
#
# Full profile: mmdebstrap minbase + systemd, systemd-sysv, udev, iproute2, kmod,
# ca-certificates (+ raspi-firmware and systemd-boot-efi, whose EFI stub racklet-image makes
# unified kernel images for UEFI machines with, on arm64); arm64 package scripts run under
# qemu-user-static through binfmt_misc. Small profile (--small): no package scripts at all,
# busybox-static unpacked with busybox init, for fast CI boots. Kubernetes profile (--profile
# kubernetes): the full profile plus what racklet-image's kubernetes profile needs in the base
# (kube/profile.BasePackages: the container runtime, CNI plugins, kubeadm's preflight tools).
# Both get Debian's kernel (linux-image-ARCH) unpacked from its .deb with the host's depmod
# run on it: Debian's own kernel install would build an initramfs racklet does not use, and
# emulated that takes longer than 25 minutes. On arm64 /boot/firmware holds what a Pi 4
# boots: raspi-firmware's start*.elf/fixup*.dat, the kernel's bcm*.dtb and the kernel, with
# a config.txt as Debian's raspi-firmware hook writes it (racklet-image adds the initramfs).
#
# Reproducible: SOURCE_DATE_EPOCH (default: bookworm's release day) clamps every mtime and
# dates the image; mmdebstrap packs a sorted tar and empties /etc/machine-id; mkoci gzips it
# at a fixed level. Cached by the hash of its inputs (this script, mkoci's source, arch,
# suite, profile, package list, mirror, epoch) under ${RACKLET_CACHE:-$HOME/.cache/racklet}/base:
# a second run only links the cached blobs into DIR. --rebuild builds again and fails unless
# the result has the cached digest, or the archive's package versions changed since (then the
# new build replaces the cached one). Needs root (mmdebstrap --mode=root, binfmt_misc).
set -euo pipefail

self=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$self")
repo=$(cd "$here/../.." && pwd)
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

suite=bookworm
mirror=http://deb.debian.org/debian
security=http://deb.debian.org/debian-security
default_epoch=1686355200 # 2023-06-10, Debian 12's release
common_pkgs=systemd,systemd-sysv,udev,iproute2,kmod,ca-certificates
# kube/profile.BasePackages (a test keeps the two lists equal).
kube_pkgs=containerd,runc,containernetworking-plugins,iptables,conntrack,ethtool,socat,kmod,iproute2,mount

log() { echo "base: $*" >&2; }
die() { log "$*"; exit 1; }

# apt_chroot runs host apt with mmdebstrap's configuration for the target root (its
# architecture, sources and lists), inside a hook.
apt_chroot() { APT_CONFIG=$MMDEBSTRAP_APT_CONFIG "$@" -o APT::Sandbox::User=root; }

# fetch_deb downloads one package (no dependencies) into the work directory, prints its path.
fetch_deb() {
  local dir=$RACKLET_BASE_WORK/debs
  mkdir -p "$dir"
  (cd "$dir" && apt_chroot apt-get download -q "$1" >&2)
  ls "$dir/$1"_*.deb
}

# unpack_deb extracts a .deb into the root keeping its merged-/usr symlinks (dpkg-deb -x
# would replace /lib with a directory). dpkg's database does not list the package.
unpack_deb() { dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --keep-directory-symlink; }

# hook is run by mmdebstrap (customize hook; extract hook for --small) with the root as $1.
hook() {
  local root=$1 arch=$RACKLET_BASE_ARCH kpkg kver deb
  kpkg=$(apt_chroot apt-cache depends "linux-image-$arch" | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
  [ -n "$kpkg" ] || die "linux-image-$arch names no kernel package in $suite"
  deb=$(fetch_deb "$kpkg")
  unpack_deb "$deb" "$root"
  kver=${kpkg#linux-image-}
  [ -d "$root/lib/modules/$kver" ] || die "$kpkg has no /lib/modules/$kver"
  depmod -b "$root" "$kver"
  echo "$kver" >"$RACKLET_BASE_WORK/kernel-version"
  if [ "$RACKLET_BASE_PROFILE" = small ]; then
    small_root "$root"
  fi
  if [ "$arch" = arm64 ]; then
    pi_boot "$root" "$kver"
    uefi_stub "$root"
  fi
  # Host files mmdebstrap copies in, and what must differ per machine, stay out of the image.
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname" "$root"/etc/ssh/ssh_host_*
  # What went in, for --rebuild to tell an archive update from a reproducibility failure.
  {
    dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Package} ${Version} ${Architecture}\n' 2>/dev/null || true
    for deb in "$root"/var/cache/apt/archives/*.deb "$RACKLET_BASE_WORK"/debs/*.deb; do
      if [ -e "$deb" ]; then dpkg-deb -W --showformat '${Package} ${Version} ${Architecture}\n' "$deb"; fi
    done
  } | sort -u >"$RACKLET_BASE_WORK/packages"
  if [ "$RACKLET_BASE_PROFILE" != small ]; then
    # Empty, not missing nor "uninitialized": systemd does not treat every boot as the first
    # (no preset-all on each boot of an overlay on tmpfs) and bind-mounts a fresh transient
    # id over it, which works on a read-only /etc (see machine-id(5), "First Boot Semantics").
    : >"$root/etc/machine-id"
  fi
}

# pi_boot lays out /boot/firmware as a Raspberry Pi 4 boots it.
pi_boot() {
  local root=$1 kver=$2 fw=$1/boot/firmware deb
  mkdir -p "$fw"
  if [ ! -d "$root/usr/lib/raspi-firmware" ]; then # --small: not installed, unpack it
    deb=$(fetch_deb raspi-firmware)
    unpack_deb "$deb" "$root"
  fi
  cp "$root"/usr/lib/raspi-firmware/* "$fw/"
  cp "$root/usr/lib/linux-image-$kver"/broadcom/bcm*.dtb "$fw/"
  cp "$root/boot/vmlinuz-$kver" "$fw/"
  cat >"$fw/config.txt" <<EOF
# Written by racklet's examples/base/debian.sh, as Debian's raspi-firmware kernel hook
# writes it; racklet-image adds the initramfs line.
arm_64bit=1
enable_uart=1
upstream_kernel=1
kernel=vmlinuz-$kver
EOF
}

# uefi_stub puts systemd's EFI stub (systemd-boot-efi, installed in the full profile) in the
# root: racklet-image makes a unified kernel image of it for UEFI arm64 machines.
uefi_stub() {
  local root=$1 deb
  if [ ! -f "$root/usr/lib/systemd/boot/efi/linuxaa64.efi.stub" ]; then # --small: unpack it
    deb=$(fetch_deb systemd-boot-efi)
    unpack_deb "$deb" "$root"
  fi
}

# small_root makes an unpacked busybox-static into a bootable root: applet links, busybox
# init, and an rcS that mounts the pseudo-filesystems, runs /etc/init.d/S* and says so.
small_root() {
  local root=$1 a
  mkdir -p "$root"/{proc,sys,dev,run,root,etc/init.d} "$root/tmp"
  chmod 1777 "$root/tmp"
  for a in $(chroot "$root" /bin/busybox --list-full); do
    mkdir -p "$root/$(dirname "$a")"
    [ -e "$root/$a" ] || [ -L "$root/$a" ] || ln -s /bin/busybox "$root/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  cat >"$root/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
EOF
  cat >"$root/etc/init.d/rcS" <<'EOF'
#!/bin/sh
# racklet small base: pseudo-filesystems, then every /etc/init.d/S[0-9][0-9]* in order.
# Those the initramfs moved over stay (its hand-over is in /run): Debian's busybox has no
# mountpoint applet, so /proc/mounts says what is mounted.
[ -e /proc/mounts ] || mount -t proc proc /proc
mounted() { grep -q "^[^ ]* $1 " /proc/mounts; }
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mounted /run || mount -t tmpfs -o mode=0755 tmpfs /run
for s in /etc/init.d/S[0-9][0-9]*; do
  [ -x "$s" ] && "$s" start
done
echo "racklet-small: init done" >/dev/console
EOF
  chmod 755 "$root/etc/init.d/rcS"
}

if [ "${1:-}" = --hook ]; then
  hook "$2"
  exit 0
fi

usage() { echo "usage: bash examples/base/debian.sh --arch arm64|amd64 --out DIR [--small | --profile full|small|kubernetes] [--rebuild]" >&2; exit 2; }
arch= out= profile=full rebuild=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=${2:-}; shift 2 ;;
    --out) out=${2:-}; shift 2 ;;
    --small) profile=small; shift ;;
    --profile) profile=${2:-}; shift 2 ;;
    --rebuild) rebuild=1; shift ;;
    *) usage ;;
  esac
done
case "$arch" in arm64 | amd64) ;; *) usage ;; esac
case "$profile" in full | small | kubernetes) ;; *) usage ;; esac
[ -n "$out" ] || usage
[ "$(id -u)" -eq 0 ] || die "run as root (mmdebstrap --mode=root, binfmt_misc)"
for t in mmdebstrap dpkg-deb depmod flock go; do
  command -v "$t" >/dev/null || die "$t is not installed (bash scripts/deps.sh installs it)"
done
start=$(date +%s%N)

epoch=${SOURCE_DATE_EPOCH:-$default_epoch}
tag=$suite-$arch
components=main
pkgs=$common_pkgs variant=minbase
if [ "$arch" = arm64 ]; then
  components="main non-free-firmware"
  pkgs=$pkgs,raspi-firmware,systemd-boot-efi
fi
if [ "$profile" = kubernetes ]; then
  tag=$tag-kubernetes
  pkgs=$pkgs,$kube_pkgs
fi
if [ "$profile" = small ]; then
  tag=$tag-small
  pkgs=busybox-static variant=extract
fi

cache=${RACKLET_CACHE:-$HOME/.cache/racklet}/base
mkdir -p "$cache/locks"
key=$(
  {
    echo "racklet-base 1 $suite $arch $profile $variant $pkgs $components $mirror $security $epoch"
    sha256sum "$self" "$here"/mkoci/*.go | grep -v '_test\.go$' | cut -d' ' -f1
    grep 'github.com/google/go-containerregistry ' "$repo/go.mod"
    go env GOVERSION
  } | sha256sum | cut -c1-32
)
entry=$cache/$key

# One builder per key; the others wait and then find it cached.
exec {lock}>"$cache/locks/$key"
flock -w 3600 "$lock" || die "timed out waiting for another build of $tag ($cache/locks/$key)"

mkoci=$entry.mkoci
if [ ! -x "$mkoci" ]; then
  (cd "$repo" && go build -o "$mkoci.tmp" ./examples/base/mkoci) && mv -f "$mkoci.tmp" "$mkoci"
fi

if [ -f "$entry/layout/index.json" ] && [ "$rebuild" = 0 ]; then
  how=cached
else
  how=built
  if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    # Package scripts and busybox --list run through qemu-user-static.
    qemu=qemu-aarch64
    [ "$arch" = amd64 ] && qemu=qemu-x86_64
    [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    grep -qx enabled "/proc/sys/fs/binfmt_misc/$qemu" 2>/dev/null || update-binfmts --enable "$qemu" ||
      die "cannot run $arch binaries: install qemu-user-static and binfmt-support (bash scripts/deps.sh)"
  fi
  work=$(mktemp -d "$cache/tmp.XXXXXX")
  # --one-file-system: never descend into a /dev, /proc or /sys that a killed mmdebstrap left
  # mounted in its chroot.
  trap 'rm -rf --one-file-system "$work"' EXIT
  trap 'exit 130' INT TERM
  sources=()
  for s in "$suite $mirror" "$suite-updates $mirror" "$suite-security $security"; do
    set -- $s
    sources+=("deb $2 $1 $components")
  done
  hookopt=--customize-hook
  [ "$profile" = small ] && hookopt=--extract-hook
  log "building $tag with mmdebstrap ($variant: $pkgs + linux-image-$arch) into $work"
  RACKLET_BASE_WORK=$work RACKLET_BASE_ARCH=$arch RACKLET_BASE_PROFILE=$profile RACKLET_BASE_SELF=$self \
    SOURCE_DATE_EPOCH=$epoch TMPDIR=$work \
    mmdebstrap --mode=root --quiet --variant="$variant" --arch="$arch" --include="$pkgs" \
    "$hookopt=bash \"\$RACKLET_BASE_SELF\" --hook \"\$1\"" \
    --format=tar "$suite" "$work/root.tar" "${sources[@]}" >&2
  kver=$(cat "$work/kernel-version")
  desc="Debian 12 ($suite) $arch racklet base, $profile profile: ${pkgs//,/, }; kernel $kver"
  "$mkoci" pack -tar "$work/root.tar" -platform "linux/$arch" -layout "$work/layout" -tag "$tag" \
    -epoch "$epoch" -annotation "org.opencontainers.image.description=$desc" \
    -annotation "org.opencontainers.image.created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)" \
    -annotation "io.racklet.base.kernel=$kver" >"$work/digest"
  echo "$kver" >"$work/kernel"
  rm -rf "$work/root.tar" "$work/debs" "$work/kernel-version"
  if [ ! -f "$entry/layout/index.json" ]; then
    mv -T "$work" "$entry"
  elif cmp -s "$work/digest" "$entry/digest"; then
    log "rebuild of $tag reproduced the cached digest $(cat "$entry/digest")"
  elif cmp -s "$work/packages" "$entry/packages"; then
    die "rebuild of $tag is not reproducible: $(cat "$work/digest") now, $(cat "$entry/digest") cached, from the same packages"
  else
    log "the archive changed since the cached build of $tag (package versions, cached < > now):"
    diff "$entry/packages" "$work/packages" | grep '^[<>]' | head -20 >&2 || true
    log "replacing the cached $tag"
    mv -T "$entry" "$entry.old.$$"
    mv -T "$work" "$entry"
    rm -rf --one-file-system "$entry.old.$$"
  fi
  trap - EXIT
  rm -rf --one-file-system "$work"
fi

touch "$entry" # last use: entries of old script versions can go by age (find -mtime)

# One writer per output layout.
exec {outlock}>"$cache/locks/out-$(realpath -m "$out" | sha256sum | cut -c1-32)"
flock -w 600 "$outlock" || die "timed out waiting for another writer of $out"
digest=$("$mkoci" copy -from "$entry/layout" -tag "$tag" -to "$out")
layer=$(find "$entry/layout/blobs" -type f -size +1M -printf '%s\n' | sort -n | tail -1)
ms=$((($(date +%s%N) - start) / 1000000))
log "$how $tag in $((ms / 1000)).$(printf %03d $((ms % 1000))) s: $digest, layer $((layer / 1048576)) MiB gzip, kernel $(cat "$entry/kernel")"
echo "oci-layout:$out:$tag"
