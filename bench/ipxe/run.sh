#!/usr/bin/env bash
# Generic client boot time: QEMU x86-64 (TCG) with its own iPXE NIC ROM,
# power-on to the kernel, through racklet-boot with its default config and
# through dnsmasq tuned by hand (busybox httpd serving the files), in the
# same run, rounds alternating. racklet-boot's defaults remove iPXE's three
# waits a server can remove (DESIGN.md, Generic clients): option 60
# PXEClient echoed, no ping before an offer, and a router advertisement
# that ends iPXE's ~13 s IPv6 autoconfiguration. dnsmasq gets the same by
# hand: --no-ping, option 60 forced, and router advertisements with
# router lifetime 0 for a ULA prefix on the server's interface.
#
#   sudo bench/ipxe/run.sh                 # 3 rounds
#   ROUNDS=5 bench/ipxe/run.sh
#   SERVERS="racklet-boot racklet-no-ra dnsmasq" bench/ipxe/run.sh
#
# racklet-no-ra is racklet-boot with server.routerAdvertisements: false, to
# show what the router advertisement alone is worth in the same run.
#
# Per boot it prints the time from QEMU's start to the kernel's first
# console line ("Linux version") and to the initramfs marker, and then the
# medians and the racklet/dnsmasq ratio. Target: <= 12 s to the kernel.
# Needs root, qemu-system-x86_64 (ipxe-qemu), dnsmasq, busybox, cpio,
# gzip, apt-get and dpkg-deb (a Debian kernel, cached under
# ${RACKLET_CACHE:-$HOME/.cache/racklet}), go.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
SERVERS=${SERVERS:-"racklet-boot racklet-no-ra dnsmasq"}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-120} # seconds, one boot
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
for t in ip qemu-system-x86_64 dnsmasq busybox cpio gzip apt-get dpkg-deb go timeout; do
	command -v "$t" >/dev/null || { echo "run.sh: $t is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces, a tap)" >&2; exit 1; }

id=$$
SW=rkx-sw-$id SRV=rkx-srv-$id
work=$(mktemp -d /tmp/rkx-ipxe.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	ip netns del "$SRV" 2>/dev/null || true
	ip netns del "$SW" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# --- a Debian kernel, cached by package name.
cache=${RACKLET_CACHE:-$HOME/.cache/racklet}/debian-kernel-amd64
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}')
[ -n "$pkg" ] || { echo "run.sh: no package behind linux-image-amd64 (apt-get update first)" >&2; exit 1; }
if ! ls "$cache/$pkg"/boot/vmlinuz-* >/dev/null 2>&1; then
	log "fetching $pkg into $cache"
	mkdir -p "$cache/$pkg.deb"
	(cd "$cache/$pkg.deb" && apt-get download "$pkg" >/dev/null)
	dpkg-deb -x "$cache/$pkg.deb/${pkg}"_*.deb "$cache/$pkg"
fi
boot=$work/boot
mkdir -p "$boot"
cp "$(ls "$cache/$pkg"/boot/vmlinuz-* | head -1)" "$boot/vmlinuz"

# --- a busybox initramfs whose /init prints the marker and powers off.
marker=RACKLET-IPXE-BENCH-OK
rootfs=$work/initramfs
mkdir -p "$rootfs"/{bin,dev,proc,sys}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"
printf '#!/bin/sh\n/bin/busybox mount -t devtmpfs dev /dev\nexec >/dev/ttyS0 2>&1\necho %s\n/bin/busybox poweroff -f\n' "$marker" >"$rootfs/init"
chmod 755 "$rootfs/init"
(cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1 >"$boot/initrd.gz")
cmdline="console=ttyS0 panic=-1"
printf '#!ipxe\nkernel http://10.88.0.1/vmlinuz %s initrd=initrd.gz\ninitrd http://10.88.0.1/initrd.gz\nboot\n' "$cmdline" >"$boot/boot.ipxe"
chmod -R a+rX "$boot"

log "building racklet-boot"
(cd "$repo" && go build -o "$work/racklet-boot" ./cmd/racklet-boot)

# --- the LAN: a switch namespace with a bridge and QEMU's tap, the server.
ip netns add "$SW"
ip netns add "$SRV"
for ns in "$SW" "$SRV"; do ip netns exec "$ns" ip link set lo up; done
ip netns exec "$SW" ip link add br0 type bridge
ip netns exec "$SW" ip link set br0 up
ip netns exec "$SW" ip link add psrv type veth peer name rkxv$id
ip netns exec "$SW" ip link set rkxv$id netns "$SRV"
ip netns exec "$SRV" ip link set rkxv$id name eth0
ip netns exec "$SRV" ip addr add 10.88.0.1/24 dev eth0
ip netns exec "$SRV" ip addr add fd00:88::1/64 dev eth0 nodad # dnsmasq's RA prefix
ip netns exec "$SRV" ip link set eth0 up
ip netns exec "$SW" ip link set psrv master br0
ip netns exec "$SW" ip link set psrv up
ip netns exec "$SW" ip tuntap add dev tap0 mode tap
ip netns exec "$SW" ip link set tap0 master br0
ip netns exec "$SW" ip link set tap0 up
mac=52:54:00:88:00:01

cat >"$work/rack.yaml" <<EOF
apiVersion: racklet.io/v1alpha1
kind: Rack
server:
  interface: eth0
  address: 10.88.0.1
  dataDir: $work/data
dhcp:
  mode: full
  pool: {start: 10.88.0.100, end: 10.88.0.150}
  router: 10.88.0.1
nodes:
  - name: pc-01
    kind: bios
    mac: $mac
    boot: {dir: $boot, kernel: vmlinuz, initrd: [initrd.gz], cmdline: "$cmdline"}
EOF
sed 's/^  dataDir: .*/&\n  routerAdvertisements: false/' "$work/rack.yaml" >"$work/rack-no-ra.yaml"

wait_port() { # wait_port PROTO:PORT, 15 s at most
	for _ in $(seq 150); do
		ip netns exec "$SRV" ss -Hlnut 2>/dev/null | awk '{print $1, $5}' | grep -q "^${1%%:*} .*:${1#*:}\$" && return 0
		sleep 0.1
	done
	echo "run.sh: nothing listens on $1" >&2
	return 1
}
srvpids=()
start_server() { # start_server NAME LOG
	srvpids=()
	case $1 in
	racklet-boot | racklet-no-ra)
		local cfg=$work/rack.yaml
		[ "$1" = racklet-no-ra ] && cfg=$work/rack-no-ra.yaml
		rm -rf "$work/data"
		ip netns exec "$SRV" "$work/racklet-boot" serve --config "$cfg" --log-level warn >"$2" 2>&1 &
		srvpids+=($!)
		wait_port udp:67 && wait_port tcp:80 ;;
	dnsmasq)
		rm -f "$work/dnsmasq.leases"
		ip netns exec "$SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= --port=0 \
			--bind-interfaces --interface=eth0 --no-ping --dhcp-leasefile="$work/dnsmasq.leases" \
			--dhcp-range=10.88.0.100,10.88.0.150,255.255.255.0,1h --dhcp-option=3,10.88.0.1 \
			--dhcp-userclass=set:ipxe,iPXE --dhcp-boot=tag:ipxe,http://10.88.0.1/boot.ipxe \
			--dhcp-option-force=60,PXEClient \
			--enable-ra --dhcp-range=fd00:88::,ra-only,64 --ra-param=eth0,60,0 >"$2" 2>&1 &
		srvpids+=($!)
		ip netns exec "$SRV" busybox httpd -f -p 10.88.0.1:80 -h "$boot" >>"$2" 2>&1 &
		srvpids+=($!)
		wait_port udp:67 && wait_port tcp:80 ;;
	esac
	pids+=("${srvpids[@]}")
}
stop_server() {
	for p in "${srvpids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}

results=$work/results
: >"$results"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
# boot_once SERVER ROUND: one power-on. The serial console is read line by
# line and each line stamped with the wall clock ($EPOCHREALTIME). The
# kernel's start is the wall time of its "Run /init" line less that line's
# own printk timestamp (the kernel's clock starts with the kernel; its first
# lines reach the console only once the console is up, so they cannot be
# stamped directly).
boot_once() {
	local srv=$1 r=$2 out=$work/$1-$2.serial t0 qpid
	start_server "$srv" "$work/$srv-$r.log"
	sleep 0.5
	t0=$EPOCHREALTIME
	ip netns exec "$SW" timeout "$BOOT_TIMEOUT" qemu-system-x86_64 -display none -serial stdio -monitor none -m 512 \
		-boot n -no-reboot -nic "tap,ifname=tap0,script=no,downscript=no,model=e1000,mac=$mac" </dev/null 2>/dev/null |
		while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done >"$out" &
	qpid=$!
	pids+=($qpid)
	wait "$qpid" 2>/dev/null || true
	stop_server
	local k m
	k=$(awk -v t0="$t0" '/Run \/init/ {gsub(/[][]/, " "); for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+$/) {printf "%.2f", $1 - $i - t0; exit}}' "$out")
	m=$(awk -v t0="$t0" -v mk="$marker" 'index($0, mk) {printf "%.2f", $1 - t0; exit}' "$out")
	if [ -z "$k" ] || [ -z "$m" ]; then
		echo "run.sh: $srv round $r: no kernel within ${BOOT_TIMEOUT}s; serial console:" >&2
		tail -c 2000 "$out" >&2 || true
		echo "$srv $r fail fail" >>"$results"
		return
	fi
	log "$srv round $r: kernel started at ${k}s, initramfs marker at ${m}s"
	echo "$srv $r $k $m" >>"$results"
}

for ((r = 1; r <= ROUNDS; r++)); do
	order=$(echo $SERVERS | awk -v r="$r" '{for (i = 0; i < NF; i++) printf "%s ", $(((r - 1 + i) % NF) + 1)}')
	for srv in $order; do boot_once "$srv" "$r"; done
done

median() { # median SERVER COLUMN
	awk -v s="$1" -v c="$2" '$1 == s && $c != "fail" {print $c}' "$results" | sort -g |
		awk '{v[NR] = $1} END {if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
echo "# QEMU x86-64 (TCG) iPXE power-on to kernel, $ROUNDS rounds alternating, medians; load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %10s %12s %8s\n' server kernel initramfs fails
for srv in $SERVERS; do
	printf '%-14s %9ss %11ss %8s\n' "$srv" "$(median "$srv" 3)" "$(median "$srv" 4)" "$(awk -v s="$srv" '$1 == s && $3 == "fail"' "$results" | wc -l)"
done
a=$(median racklet-boot 3) b=$(median dnsmasq 3) c=$(median racklet-no-ra 3)
if [ "$a" != - ] && [ "$b" != - ]; then
	echo "racklet-boot/dnsmasq (time to kernel): $(echo "scale=2; $a / $b" | bc)  (target: racklet-boot <= 12 s)"
fi
if [ "$a" != - ] && [ "$c" != - ]; then
	echo "racklet-boot/racklet-no-ra (time to kernel): $(echo "scale=2; $a / $c" | bc)"
fi
