#!/usr/bin/env bash
# Boot storm: N simulated Raspberry Pis (racklet-boot simulate, mixed Pi 4 and
# Pi 5, each on its own macvlan) power on at once against racklet-boot serve
# (full DHCP + TFTP), against dnsmasq (DHCP + TFTP, the reference) and against
# tftpd-hpa (TFTP, with dnsmasq for DHCP only), on a private LAN of network
# namespaces: a switch (bridge), the server, the rack.
#
# Each node boots a ~30 MiB tree (kernel, initramfs, start4.elf on Pi 4,
# small files); one tree per model, shared by that model's nodes: racklet-boot
# maps each serial to its model's dir in the rack config, dnsmasq gets one
# directory per serial made of hard links to the model's files.
#
# Per storm it records time-to-kernel p50/p99/max (total_ns of the Pis that
# loaded their kernel), finished count, reads that missed the firmware's 30 s
# per-file timeout, aggregate TFTP MB/s (payload bytes of all Pis / wall time
# of the simulate command), the server's idle VmRSS (after start), peak VmHWM
# (after the storm; a fresh server process per storm), its CPU seconds and the
# simulator's CPU seconds (server and clients share the same cores). While
# the Pis boot, one more Pi of the same rack (listed in the config, not
# booted) sends a DHCPDISCOVER every 200 ms from its own macvlan and times
# the OFFER (storm dhcpprobe): DHCP p99 (and lost probes) during the storm.
# Rounds alternate the server order; the table shows medians and the ratios
# racklet-boot/dnsmasq from this one run.
#
#   sudo bench/storm/run.sh                      # 100 nodes, 2 rounds
#   NODES="10 50 100" ROUNDS=3 bench/storm/run.sh
#   KERNEL_MIB=20 INITRD_MIB=8 START_MIB=2 SEED=1 KEEP=1 bench/storm/run.sh
#   SERVERS="racklet-boot dnsmasq" PROFILE=1 bench/storm/run.sh   # perf profile of racklet-boot
#
# Needs: root, ip (iproute2), dnsmasq, in.tftpd (tftpd-hpa), curl, go, and
# perf (linux-perf) for PROFILE=1. Output files (per-round
# simulator JSON, server logs, rounds.jsonl) stay in $OUT when KEEP=1.
set -euo pipefail

NODES=${NODES:-100}
ROUNDS=${ROUNDS:-2}
SEED=${SEED:-1}
KERNEL_MIB=${KERNEL_MIB:-20}
INITRD_MIB=${INITRD_MIB:-8}
START_MIB=${START_MIB:-2}
STORM_TIMEOUT=${STORM_TIMEOUT:-600} # seconds, one simulate run
LOG_LEVEL=${LOG_LEVEL:-info}        # racklet-boot serve's log level
KEEP=${KEEP:-0}
IMAGE=${IMAGE:-1} # also storm racklet-boot serving the same files from a signed OCI image
SERVERS=${SERVERS:-"racklet-boot dnsmasq tftpd-hpa"}
PROFILE=${PROFILE:-0} # 1: perf record racklet-boot during its storms, top symbols printed

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
for t in ip dnsmasq in.tftpd curl go jq timeout; do
	command -v "$t" >/dev/null || { echo "run.sh: $t is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces, macvlans)" >&2; exit 1; }

id=$$
SW=rks-sw-$id SRV=rks-srv-$id RACK=rks-rack-$id
work=$(mktemp -d /tmp/rks-storm.XXXXXX)
chmod 755 "$work" # dnsmasq reads its TFTP root as nobody
OUT=${OUT:-$work/out}
mkdir -p "$OUT"
srvpid="" dhcppid="" probepid="" perfpid=""
cleanup() {
	for p in $probepid $perfpid $srvpid $dhcppid; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	ip netns del "$RACK" 2>/dev/null || true
	ip netns del "$SRV" 2>/dev/null || true
	ip netns del "$SW" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then echo "run.sh: files kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
TIMEFORMAT='%U %S'

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

log "building racklet-boot and the storm helper"
(cd "$repo" && go build -o "$work/racklet-boot" ./cmd/racklet-boot && go build -o "$work/racklet-image" ./cmd/racklet-image && go build -o "$work/storm" ./bench/storm)
(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags='-s -w' -o "$work/racklet-agent-linux-arm64" ./cmd/racklet-agent) # beside racklet-image
rb=$work/racklet-boot storm=$work/storm ri=$work/racklet-image

# --- the LAN: switch namespace with a bridge, server and rack attached by veth.
ip netns add "$SW"
ip netns add "$SRV"
ip netns add "$RACK"
for ns in "$SW" "$SRV" "$RACK"; do ip netns exec "$ns" ip link set lo up; done
ip netns exec "$SW" ip link add br0 type bridge
ip netns exec "$SW" ip link set br0 up
attach() { # attach NS PORT [ADDR]: NS's eth0 <-> switch port PORT
	local ns=$1 port=$2 addr=${3:-}
	ip netns exec "$SW" ip link add "$port" type veth peer name rksv$id
	ip netns exec "$SW" ip link set rksv$id netns "$ns"
	ip netns exec "$ns" ip link set rksv$id name eth0
	[ -n "$addr" ] && ip netns exec "$ns" ip addr add "$addr" dev eth0
	ip netns exec "$ns" ip link set eth0 up
	ip netns exec "$SW" ip link set "$port" master br0
	ip netns exec "$SW" ip link set "$port" up
}
attach "$SRV" psrv 10.42.0.2/24
attach "$RACK" prack
log "LAN: switch $SW, server $SRV (10.42.0.2), rack $RACK"

# --- boot trees, one per model.
maxn=0
for n in $NODES; do [ "$n" -gt "$maxn" ] && maxn=$n; done
boot=$work/boot
mkdir -p "$boot/rpi4/overlays" "$boot/rpi5"
blob() { head -c "$2" /dev/urandom >"$1"; }
blob "$boot/rpi4/start4.elf" $((START_MIB << 20))
blob "$boot/rpi4/fixup4.dat" $((5 << 10))
blob "$boot/rpi4/bcm2711-rpi-4-b.dtb" $((52 << 10))
blob "$boot/rpi4/overlays/vc4-kms-v3d.dtbo" $((4 << 10))
blob "$boot/rpi4/kernel8.img" $((KERNEL_MIB << 20))
blob "$boot/rpi4/initramfs8" $((INITRD_MIB << 20))
printf '[all]\narm_64bit=1\nkernel=kernel8.img\ninitramfs initramfs8 followkernel\n' >"$boot/rpi4/config.txt"
blob "$boot/rpi5/bcm2712-rpi-5-b.dtb" $((78 << 10))
blob "$boot/rpi5/kernel_2712.img" $((KERNEL_MIB << 20))
blob "$boot/rpi5/initramfs_2712" $((INITRD_MIB << 20))
printf '[all]\nkernel=kernel_2712.img\ninitramfs initramfs_2712 followkernel\n' >"$boot/rpi5/config.txt"
for m in rpi4 rpi5; do
	echo "console=serial0,115200 root=/dev/ram0 quiet" >"$boot/$m/cmdline.txt"
done
chmod -R a+rX "$boot"
log "boot trees: rpi4 $(du -sm "$boot/rpi4" | cut -f1) MiB, rpi5 $(du -sm "$boot/rpi5" | cut -f1) MiB"

# --- the rack: racklet-boot's config and dnsmasq's per-serial directories.
# One Pi more than the largest storm: the DHCP probe (listed, never booted).
"$storm" serials -nodes $((maxn + 1)) -seed "$SEED" >"$work/serials"
tftproot=$work/tftp
mkdir -p "$tftproot"
cfg=$work/rack.yaml
{
	cat <<EOF
apiVersion: racklet.io/v1alpha1
kind: Rack
server:
  interface: eth0
  address: 10.42.0.2
  dataDir: $work/data
dhcp:
  mode: full
  pool: {start: 10.42.0.100, end: 10.42.0.250}
  router: 10.42.0.1
  dns: [10.42.0.1]
  leaseTime: 1h
unknownMachines: ignore
nodes:
EOF
	i=0
	while read -r serial model; do
		i=$((i + 1))
		printf '  - name: pi-%03d\n    kind: rpi%s\n    serial: "%s"\n    boot: {dir: %s}\n' "$i" "$model" "$serial" "$boot/rpi$model"
		cp -al "$boot/rpi$model" "$tftproot/$serial" # hard links: same inodes, no copy
	done <"$work/serials"
} >"$cfg"
chmod -R a+rX "$tftproot"

# --- the same files as a signed OCI image (racklet-image build + sign, in an
# OCI layout): racklet-boot verifies it, caches it by digest and serves its
# boot partition in place. One image for both models: config.txt has [pi4]
# and [pi5] sections. The image's initramfs is racklet's own (racklet-image
# writes initramfs8 with the agent and loads it for every model), so this
# row moves fewer bytes per node than the directory rows: compare its MB/s,
# not its times.
cfg_img=$work/rack-image.yaml
if [ "$IMAGE" = 1 ]; then
	ov=$work/overlay/boot/firmware
	mkdir -p "$ov"
	cp -a "$boot/rpi4/." "$boot/rpi5/." "$ov/"
	rm -f "$ov/initramfs8" "$ov/initramfs_2712"
	printf '[pi4]\narm_64bit=1\nkernel=kernel8.img\n[pi5]\nkernel=kernel_2712.img\n' >"$ov/config.txt"
	(cd "$repo" && go run ./bench/image/mkbase -layout "$work/base" -size 0 >/dev/null)
	export RACKLET_KEY_PASSWORD=storm
	"$ri" keygen --prefix "$work/key" >/dev/null
	"$ri" build --base "oci-layout:$work/base:test" --overlay "$work/overlay" --dir "$work/img" --log-level warn >/dev/null
	"$ri" push "$work/img" "oci-layout:$work/layout:storm" >/dev/null
	"$ri" sign "oci-layout:$work/layout:storm" --key "$work/key.key" >/dev/null
	sed -e "s|boot: {dir: [^}]*}|boot: {image: \"oci-layout:$work/layout:storm\"}|" \
		-e "s|^nodes:|trust:\n  - repositories: [\"oci-layout:$work/layout\"]\n    keys: [{file: $work/key.pub}]\nnodes:|" "$cfg" >"$cfg_img"
	log "signed image: $(du -sm "$work/img/boot.vfat" | cut -f1) MiB boot partition in oci-layout:$work/layout:storm (racklet's initramfs8: $(( $(jq .boot.initramfs.size "$work/img/manifest.json") >> 10 )) KiB)"
fi

# --- process helpers.
rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; } # KiB
cpu_ticks() { awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat"; } # children too: tftpd-hpa forks per transfer
hz=$(getconf CLK_TCK)
stop_server() {
	for p in $srvpid $dhcppid; do
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	srvpid="" dhcppid=""
}
wait_tftp_port() { # bounded: 15 s
	for _ in $(seq 150); do
		ip netns exec "$SRV" ss -uln 2>/dev/null | grep -q '[:.]69 ' && return 0
		sleep 0.1
	done
	return 1
}
# forget_neighbours empties the server's and the rack's neighbour (ARP)
# caches before a storm: addresses move between Pis from one server to the
# next, and a stale entry sends a reply to another Pi's macvlan, whose kernel
# (the same rack namespace) answers with ICMP port unreachable.
forget_neighbours() {
	ip -n "$SRV" neigh flush all 2>/dev/null || true
	ip -n "$RACK" neigh flush all 2>/dev/null || true
}
start_racklet() { # start_racklet LOG [CONFIG]
	rm -rf "$work/data"
	ip netns exec "$SRV" "$rb" serve --config "${2:-$cfg}" --log-format json --log-level "$LOG_LEVEL" >"$1" 2>&1 &
	srvpid=$!
	for _ in $(seq 150); do
		[ -S "$work/data/admin.sock" ] && ip netns exec "$SRV" "$rb" nodes --data-dir "$work/data" -o json --events 0 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "run.sh: racklet-boot did not answer within 15 s:" >&2
	tail -20 "$1" >&2
	exit 1
}
start_dnsmasq() { # start_dnsmasq LOG
	rm -f "$work/dnsmasq.leases"
	ip netns exec "$SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= --port=0 \
		--bind-interfaces --interface=eth0 --no-ping \
		--dhcp-range=10.42.0.100,10.42.0.250,255.255.255.0,1h --dhcp-option=3,10.42.0.1 \
		--dhcp-leasefile="$work/dnsmasq.leases" '--pxe-service=0,"Raspberry Pi Boot"' \
		--enable-tftp --tftp-root="$tftproot" --tftp-max=$((maxn * 2 + 10)) --log-facility="$1" >>"$1" 2>&1 &
	srvpid=$!
	wait_tftp_port || { echo "run.sh: dnsmasq did not listen on 69 within 15 s:" >&2; tail -20 "$1" >&2; exit 1; }
}

start_tftpd_hpa() { # start_tftpd_hpa LOG: dnsmasq for DHCP only, tftpd-hpa for TFTP
	rm -f "$work/dnsmasq.leases"
	ip netns exec "$SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= --port=0 \
		--bind-interfaces --interface=eth0 --no-ping \
		--dhcp-range=10.42.0.100,10.42.0.250,255.255.255.0,1h --dhcp-option=3,10.42.0.1 \
		--dhcp-leasefile="$work/dnsmasq.leases" '--pxe-service=0,"Raspberry Pi Boot"' \
		--dhcp-option=66,10.42.0.2 --log-facility="$1.dhcp" >>"$1" 2>&1 &
	dhcppid=$!
	ip netns exec "$SRV" in.tftpd -L -s "$tftproot" -a 10.42.0.2:69 >>"$1" 2>&1 &
	srvpid=$!
	wait_tftp_port || { echo "run.sh: in.tftpd did not listen on 69 within 15 s:" >&2; tail -20 "$1" >&2; exit 1; }
}
start_probe() { # start_probe N TAG: the DHCP probe in the rack namespace
	ip netns exec "$RACK" "$storm" dhcpprobe -parent eth0 -nodes "$1" -seed "$SEED" -out "$OUT/$2.probe.json" 2>"$OUT/$2.probe.err" &
	probepid=$!
}
stop_probe() {
	kill -TERM "$probepid" 2>/dev/null || true
	wait "$probepid" 2>/dev/null || true
	probepid=""
}

# --- dnsmasq and symlinks: does its TFTP follow a link inside the root, and
# one that leaves it? (We use hard links either way; this records the rule.)
first=$(head -1 "$work/serials" | cut -d' ' -f1)
ln -s "$first" "$tftproot/rks-link-in"
ln -s "$boot/rpi4" "$tftproot/rks-link-out"
start_dnsmasq "$OUT/dnsmasq-symlink.log"
for l in rks-link-in rks-link-out; do
	if ip netns exec "$SRV" curl -sf --max-time 5 -o /dev/null "tftp://10.42.0.2/$l/config.txt"; then r=served; else r="refused (curl exit $?)"; fi
	log "dnsmasq symlink check: $l/config.txt $r"
done
stop_server
rm "$tftproot/rks-link-in" "$tftproot/rks-link-out"

# --- the storms.
storm_once() { # storm_once SERVER N ROUND
	local server=$1 n=$2 round=$3 tag=$1-n$2-r$3
	forget_neighbours
	case $server in
	racklet-boot) start_racklet "$OUT/$tag.log" ;;
	racklet-image) # nodes boot after the server verified and cached its images, as in a real rack
		start_racklet "$OUT/$tag.log" "$cfg_img"
		for _ in $(seq 600); do grep -q 'assigned images verified and cached' "$OUT/$tag.log" && break; sleep 0.1; done ;;
	tftpd-hpa) start_tftpd_hpa "$OUT/$tag.log" ;;
	*) start_dnsmasq "$OUT/$tag.log" ;;
	esac
	sleep 1
	# The same DHCP probe for 10 s before the storm: what the machine's own
	# load costs DHCP, to read the storm's figure against.
	ip netns exec "$RACK" timeout -s TERM 10 "$storm" dhcpprobe -parent eth0 -nodes "$n" -seed "$SEED" \
		-out "$OUT/$tag.idle.json" 2>"$OUT/$tag.idle.err" || true
	local idle cpu0 cpu1 peak t0 t1 rc=0
	idle=$(rss "$srvpid" VmRSS)
	cpu0=$(cpu_ticks "$srvpid")
	if [ "$PROFILE" = 1 ] && [ "$server" = racklet-boot ]; then
		perf record -F 499 -g -p "$srvpid" -o "$OUT/$tag.perf" >/dev/null 2>&1 &
		perfpid=$!
	fi
	start_probe "$n" "$tag"
	t0=$(date +%s%N)
	# bash's time keyword reports the simulator's user and system CPU seconds.
	{ time timeout "$STORM_TIMEOUT" ip netns exec "$RACK" "$rb" simulate --interface eth0 --nodes "$n" --kind mixed \
		--seed "$SEED" -o json --log-level warn >"$OUT/$tag.json" 2>"$OUT/$tag.sim.err" || rc=$?; } 2>"$OUT/$tag.time"
	t1=$(date +%s%N)
	stop_probe
	if [ -n "$perfpid" ]; then
		kill -INT "$perfpid" 2>/dev/null || true
		wait "$perfpid" 2>/dev/null || true
		perfpid=""
	fi
	peak=$(rss "$srvpid" VmHWM)
	cpu1=$(cpu_ticks "$srvpid")
	stop_server
	probe_arg=""
	[ -s "$OUT/$tag.probe.json" ] && probe_arg="-dhcp-probe $OUT/$tag.probe.json"
	[ -s "$OUT/$tag.idle.json" ] && probe_arg="$probe_arg -dhcp-idle-probe $OUT/$tag.idle.json"
	if [ ! -s "$OUT/$tag.json" ]; then
		echo "run.sh: $tag: the simulator wrote no results (exit $rc):" >&2
		tail -20 "$OUT/$tag.sim.err" >&2
		return 1
	fi
	"$storm" summarize -server "$server" -round "$round" -wall-ns $((t1 - t0)) -idle-rss-kib "$idle" \
		-peak-rss-kib "$peak" ${probe_arg:-} -client-cpu-s "$(awk '{printf "%.2f", $1 + $2}' "$OUT/$tag.time")" -server-cpu-s "$(awk -v a="$cpu0" -v b="$cpu1" -v h="$hz" 'BEGIN{printf "%.2f", (b-a)/h}')" \
		"$OUT/$tag.json" | tee -a "$OUT/rounds.jsonl" >&2
}

for n in $NODES; do
	for round in $(seq "$ROUNDS"); do
		# Rotate the servers' order from round to round.
		order=$(echo $SERVERS | awk -v r="$round" '{for (i = 0; i < NF; i++) printf "%s ", $(((r - 1 + i) % NF) + 1)}')
		if [ "$IMAGE" = 1 ]; then
			if [ $((round % 2)) = 1 ]; then order="racklet-image $order"; else order="$order racklet-image"; fi
		fi
		for server in $order; do
			log "storm: $server, $n nodes, round $round"
			storm_once "$server" "$n" "$round"
		done
	done
done

echo
echo "Boot storm: mixed Pi 4/Pi 5, ${KERNEL_MIB} MiB kernel + ${INITRD_MIB} MiB initramfs (+ ${START_MIB} MiB start4.elf on Pi 4), seed $SEED; each column is the median of $ROUNDS rounds (lower middle for an even count)"
"$storm" table "$OUT/rounds.jsonl"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$PROFILE" = 1 ]; then
	for f in "$OUT"/racklet-boot-*.perf; do
		[ -s "$f" ] || continue
		echo "# perf profile of racklet-boot serve, $(basename "$f" .perf): top symbols (self)"
		perf report -i "$f" --stdio --no-children -g none --sort dso,symbol 2>/dev/null | grep -v '^#' | grep '%' | head -25 || true
	done
fi
[ "$KEEP" = 1 ] && echo "per-round JSON and logs: $OUT"
exit 0
