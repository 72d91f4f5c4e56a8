#!/usr/bin/env bash
# HTTP-boot storm: N simulated Raspberry Pis (racklet-boot simulate, mixed Pi 4
# and Pi 5, each on its own macvlan, EEPROM BOOT_ORDER=0xf7) power on at once
# and HTTP boot: DHCP, then GET http://SERVER/net_install/boot.sig and
# boot.img, one URL for the whole rack, each image checked against its RSA
# signature with the EEPROM key before it counts.
#
#   racklet-boot  serve (full DHCP + HTTP): picks each node by its lease and
#                 serves its signed OCI image's boot.vfat as boot.img
#   nginx         the peer: dnsmasq for DHCP, nginx serving the same boot.img
#                 and boot.sig as static files (sendfile on)
#
# The image is what racklet-image builds from a ~30 MiB boot tree (kernel,
# initramfs, start4.elf), signed with --boot-key: a 64 MiB FAT32 boot.img.
# A Pi whose GET fails or times out (30 s, as for a TFTP file) starts over, as
# the firmware does at the f of 0xf7, at most RESTARTS times. Per storm it
# records each node's boot.img time (GET to last byte) of its successful
# attempt, power-on to verified image, finished count (and how many needed no
# restart), MB/s, the server's peak RSS and CPU and
# the simulator's CPU. Rounds alternate the server order; the table shows
# medians, the racklet-boot/nginx ratios of this one run and whether every
# node's boot.img arrived in under 15 s.
#
#   sudo bench/storm/http.sh                  # 100 and 200 nodes, 1 round
#   NODES=100 ROUNDS=3 PEER=0 bench/storm/http.sh
#   BOOT_MIB=36 bench/storm/http.sh           # a boot.img sized to its ~30 MiB of files
#
# Needs: root, ip (iproute2), dnsmasq, nginx (nginx-light), go.
set -euo pipefail

NODES=${NODES:-"100 200"}
ROUNDS=${ROUNDS:-1}
SEED=${SEED:-1}
KERNEL_MIB=${KERNEL_MIB:-20}
INITRD_MIB=${INITRD_MIB:-8}
START_MIB=${START_MIB:-2}
BOOT_MIB=${BOOT_MIB:-0}             # boot.img volume size; 0: racklet-image's default (content + 25% + 16 MiB, at least 64 MiB)
STORM_TIMEOUT=${STORM_TIMEOUT:-600} # seconds, one simulate run
LOG_LEVEL=${LOG_LEVEL:-info}        # racklet-boot serve's log level (info: the "cached" line is waited for)
PEER=${PEER:-1}                     # also storm dnsmasq + nginx
RESTARTS=${RESTARTS:-2}             # a Pi that failed starts BOOT_ORDER over (0xf7: the f) at most this often
KEEP=${KEEP:-0}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
for t in ip go timeout; do
	command -v "$t" >/dev/null || { echo "http.sh: $t is not installed" >&2; exit 1; }
done
if [ "$PEER" = 1 ]; then
	for t in dnsmasq nginx; do
		command -v "$t" >/dev/null || { echo "http.sh: $t is not installed (PEER=0 skips the peer)" >&2; exit 1; }
	done
fi
[ "$(id -u)" = 0 ] || { echo "http.sh: needs root (network namespaces, macvlans)" >&2; exit 1; }

id=$$
SW=rkh-sw-$id SRV=rkh-srv-$id RACK=rkh-rack-$id
work=$(mktemp -d /tmp/rkh-storm.XXXXXX)
chmod 755 "$work" # nginx workers read as nobody
OUT=${OUT:-$work/out}
mkdir -p "$OUT"
pids=()
cleanup() {
	stop_servers
	ip netns del "$RACK" 2>/dev/null || true
	ip netns del "$SRV" 2>/dev/null || true
	ip netns del "$SW" 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then echo "http.sh: files kept in $work" >&2; else rm -rf "$work"; fi
}
stop_servers() {
	local p
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	pids=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
TIMEFORMAT='%U %S'
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

log "building racklet-boot, racklet-image and the storm helper"
(cd "$repo" && go build -o "$work/" ./cmd/racklet-boot ./cmd/racklet-image && go build -o "$work/storm" ./bench/storm)
(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -ldflags='-s -w' -o "$work/racklet-agent-linux-arm64" ./cmd/racklet-agent) # beside racklet-image
rb=$work/racklet-boot ri=$work/racklet-image storm=$work/storm

# --- the LAN: a /22, so 200 Pis fit in the pool.
ip netns add "$SW"
ip netns add "$SRV"
ip netns add "$RACK"
for ns in "$SW" "$SRV" "$RACK"; do ip netns exec "$ns" ip link set lo up; done
ip netns exec "$SW" ip link add br0 type bridge
ip netns exec "$SW" ip link set br0 up
attach() { # attach NS PORT [ADDR]
	local ns=$1 port=$2 addr=${3:-}
	ip netns exec "$SW" ip link add "$port" type veth peer name rkhv$id
	ip netns exec "$SW" ip link set rkhv$id netns "$ns"
	ip netns exec "$ns" ip link set rkhv$id name eth0
	[ -n "$addr" ] && ip netns exec "$ns" ip addr add "$addr" dev eth0
	ip netns exec "$ns" ip link set eth0 up
	ip netns exec "$SW" ip link set "$port" master br0
	ip netns exec "$SW" ip link set "$port" up
}
attach "$SRV" psrv 10.43.0.2/22
attach "$RACK" prack

# --- the signed image: one for both models (config.txt has [pi4] and [pi5]).
ov=$work/overlay/boot/firmware
mkdir -p "$ov/overlays"
blob() { head -c "$2" /dev/urandom >"$1"; }
blob "$ov/start4.elf" $((START_MIB << 20))
blob "$ov/fixup4.dat" $((5 << 10))
blob "$ov/bcm2711-rpi-4-b.dtb" $((52 << 10))
blob "$ov/bcm2712-rpi-5-b.dtb" $((78 << 10))
blob "$ov/overlays/vc4-kms-v3d.dtbo" $((4 << 10))
blob "$ov/kernel8.img" $((KERNEL_MIB << 20))
# racklet-image writes its own initramfs8 (the agent) and loads it from
# config.txt; this blob stands for the rest of a ~30 MiB boot tree.
blob "$ov/storm-ballast.bin" $((INITRD_MIB << 20))
printf '[pi4]\narm_64bit=1\nkernel=kernel8.img\n[pi5]\nkernel=kernel8.img\n' >"$ov/config.txt"
(cd "$repo" && go run ./bench/image/mkbase -layout "$work/base" -size 0 >/dev/null)
export RACKLET_KEY_PASSWORD=storm
"$ri" keygen --prefix "$work/cosign" >/dev/null
"$ri" keygen --prefix "$work/eeprom" --type rsa2048 >/dev/null
"$ri" build --base "oci-layout:$work/base:test" --overlay "$work/overlay" --dir "$work/img" --boot-key "$work/eeprom.key" \
	--boot-size $((BOOT_MIB << 20)) --log-level warn >/dev/null
"$ri" push "$work/img" "oci-layout:$work/layout:storm" >/dev/null
"$ri" sign "oci-layout:$work/layout:storm" --key "$work/cosign.key" >/dev/null
imgmib=$(( $(stat -c %s "$work/img/boot.vfat") >> 20 ))
log "signed boot.img: $imgmib MiB (boot.vfat of oci-layout:$work/layout:storm), boot.sig by $work/eeprom.pub"

# --- racklet-boot's rack config; the peer's web root (same two files).
maxn=0
for n in $NODES; do [ "$n" -gt "$maxn" ] && maxn=$n; done
"$storm" serials -nodes "$maxn" -seed "$SEED" >"$work/serials"
cfg=$work/rack.yaml
{
	cat <<EOF
apiVersion: racklet.io/v1alpha1
kind: Rack
server:
  interface: eth0
  address: 10.43.0.2
  dataDir: $work/data
dhcp:
  mode: full
  subnet: 10.43.0.0/22
  pool: {start: 10.43.1.0, end: 10.43.3.250}
  router: 10.43.0.1
  leaseTime: 1h
unknownMachines: ignore
trust:
  - repositories: ["oci-layout:$work/layout"]
    keys: [{file: $work/cosign.pub}]
nodes:
EOF
	i=0
	while read -r serial model; do
		i=$((i + 1))
		printf '  - name: pi-%03d\n    kind: rpi%s\n    serial: "%s"\n    boot: {image: "oci-layout:%s:storm"}\n' "$i" "$model" "$serial" "$work/layout"
	done <"$work/serials"
} >"$cfg"
www=$work/www/net_install
mkdir -p "$www"
cp "$work/img/boot.vfat" "$www/boot.img"
cp "$work/img/boot.sig" "$www/boot.sig"
chmod -R a+rX "$work/www"
cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  server { listen 10.43.0.2:80; root $work/www; }
}
EOF

# --- process helpers: CPU and peak RSS summed over a server's processes.
hz=$(getconf CLK_TCK)
tree() { # PIDs of $1 and its children
	echo "$1"
	pgrep -P "$1" 2>/dev/null || true
}
cpu_ticks() { local t=0 p; for p in $(for s in "$@"; do tree "$s"; done); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
peak_kib() { local t=0 p; for p in $(for s in "$@"; do tree "$s"; done); do t=$((t + $(awk '$1 == "VmHWM:" {print $2}' "/proc/$p/status" 2>/dev/null || echo 0))); done; echo $t; }
wait_port() { # wait_port tcp|udp PORT, bounded: 15 s
	for _ in $(seq 150); do
		ip netns exec "$SRV" ss -Hln"${1:0:1}" 2>/dev/null | grep -q "[:.]$2 " && return 0
		sleep 0.1
	done
	echo "http.sh: nothing listens on $1 $2 after 15 s" >&2
	return 1
}
start_racklet() { # start_racklet LOG
	rm -rf "$work/data"
	ip netns exec "$SRV" "$rb" serve --config "$cfg" --log-format json --log-level "$LOG_LEVEL" >"$1" 2>&1 &
	pids=($!)
	wait_port tcp 80 || { tail -20 "$1" >&2; exit 1; }
	# Nodes power on once the server verified and cached its image, as in a real rack.
	for _ in $(seq 600); do grep -q 'assigned images verified and cached' "$1" && return 0; sleep 0.1; done
	echo "http.sh: racklet-boot did not cache the image in 60 s:" >&2
	tail -20 "$1" >&2
	exit 1
}
start_peer() { # start_peer LOG
	rm -f "$work/dnsmasq.leases"
	ip netns exec "$SRV" dnsmasq --keep-in-foreground --conf-file=/dev/null --pid-file= --port=0 \
		--bind-interfaces --interface=eth0 --no-ping --dhcp-range=10.43.1.0,10.43.3.250,255.255.252.0,1h \
		--dhcp-option=3,10.43.0.1 --dhcp-leasefile="$work/dnsmasq.leases" --log-facility="$1" >>"$1" 2>&1 &
	pids=($!)
	ip netns exec "$SRV" nginx -c "$work/nginx.conf" -p "$work" >>"$1" 2>&1 &
	pids+=($!)
	wait_port udp 67 && wait_port tcp 80 || { tail -20 "$1" >&2; exit 1; }
}

storm_once() { # storm_once SERVER N ROUND
	local server=$1 n=$2 round=$3 tag=http-$1-n$2-r$3
	case $server in
	racklet-boot) start_racklet "$OUT/$tag.log" ;;
	nginx) start_peer "$OUT/$tag.log" ;;
	esac
	sleep 1
	local cpu0 cpu1 peak t0 t1 rc=0
	cpu0=$(cpu_ticks "${pids[@]}")
	t0=$(date +%s%N)
	{ time timeout "$STORM_TIMEOUT" ip netns exec "$RACK" "$rb" simulate --interface eth0 --nodes "$n" --kind mixed \
		--seed "$SEED" --boot-order 0xf7 --restarts "$RESTARTS" --http-host 10.43.0.2 --pubkey "$work/eeprom.pub" \
		-o json --log-level warn >"$OUT/$tag.json" 2>"$OUT/$tag.sim.err" || rc=$?; } 2>"$OUT/$tag.time"
	t1=$(date +%s%N)
	peak=$(peak_kib "${pids[@]}")
	cpu1=$(cpu_ticks "${pids[@]}")
	stop_servers
	if [ ! -s "$OUT/$tag.json" ]; then
		echo "http.sh: $tag: the simulator wrote no results (exit $rc):" >&2
		tail -20 "$OUT/$tag.sim.err" >&2
		return 1
	fi
	"$storm" http-summarize -server "$server" -round "$round" -wall-ns $((t1 - t0)) -peak-rss-kib "$peak" \
		-client-cpu-s "$(awk '{printf "%.2f", $1 + $2}' "$OUT/$tag.time")" \
		-server-cpu-s "$(awk -v a="$cpu0" -v b="$cpu1" -v h="$hz" 'BEGIN{printf "%.2f", (b-a)/h}')" \
		"$OUT/$tag.json" | tee -a "$OUT/http-rounds.jsonl" >&2
}

for n in $NODES; do
	for round in $(seq "$ROUNDS"); do
		order="racklet-boot"
		if [ "$PEER" = 1 ]; then
			if [ $((round % 2)) = 1 ]; then order="racklet-boot nginx"; else order="nginx racklet-boot"; fi
		fi
		for server in $order; do
			log "http storm: $server, $n nodes, round $round"
			storm_once "$server" "$n" "$round"
		done
	done
done

echo
echo "HTTP-boot storm: mixed Pi 4/Pi 5, BOOT_ORDER=0xf7, one signed ${imgmib} MiB boot.img (${KERNEL_MIB} MiB kernel + ${INITRD_MIB} MiB initramfs + ${START_MIB} MiB start4.elf), seed $SEED; each column is the median of $ROUNDS round(s); img = per-node boot.img GET time"
"$storm" http-table "$OUT/http-rounds.jsonl"
[ "$KEEP" = 1 ] && echo "per-round JSON and logs: $OUT"
exit 0
