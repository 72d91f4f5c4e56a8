#!/usr/bin/env bash
# DHCP benchmark: racklet-boot's DHCP server (full mode, bbolt leases: fsync
# before every ACK) against dnsmasq (--no-ping and default), all driven by
# the same perfdhcp load in the same namespace pair, in one run. Rounds
# alternate the server order; the summary takes medians per server and
# prints racklet-boot's rate and p99 as ratios to dnsmasq --no-ping.
#
# Usage: sudo bench/dhcp/run.sh    (env: RATE=1000 PERIOD=10 ROUNDS=3 CLIENTS=5000)
# Needs: root, ip, perfdhcp (kea-admin), dnsmasq, python3, go.
set -euo pipefail

RATE=${RATE:-1000}
PERIOD=${PERIOD:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-5000}
WITH_MEMORY=${WITH_MEMORY:-1} # also run racklet-boot with an in-memory store (no fsync), as a reference

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
for tool in ip perfdhcp dnsmasq python3 go; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (network namespaces)" >&2; exit 1; }

id=$$
S=rkdb-s-$id C=rkdb-c-$id SIF=rkdb${id}s CIF=rkdb${id}c
work=$(mktemp -d /tmp/rkdb.XXXXXX)
chmod 755 "$work"
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	ip netns del "$S" 2>/dev/null || true
	ip netns del "$C" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$root" && go build -o "$work/server" ./bench/dhcp/server)

ip netns add "$S"
ip netns add "$C"
ip link add "$SIF" netns "$S" type veth peer name "$CIF" netns "$C"
ip -n "$S" addr add 10.78.0.1/16 dev "$SIF"
ip -n "$C" addr add 10.78.0.2/16 dev "$CIF"
for ns in "$S" "$C"; do ip -n "$ns" link set lo up; done
ip -n "$S" link set "$SIF" up
ip -n "$C" link set "$CIF" up

start_server() { # name
	rm -f "$work/leases.db" "$work/dnsmasq.leases"
	case "$1" in
	racklet-bolt)
		ip netns exec "$S" "$work/server" -iface "$SIF" -addr 10.78.0.1 -subnet 10.78.0.0/16 \
			-pool-start 10.78.1.0 -pool-end 10.78.250.250 -db "$work/leases.db" 2>>"$work/server.log" &
		;;
	racklet-memory)
		ip netns exec "$S" "$work/server" -iface "$SIF" -addr 10.78.0.1 -subnet 10.78.0.0/16 \
			-pool-start 10.78.1.0 -pool-end 10.78.250.250 2>>"$work/server.log" &
		;;
	dnsmasq-noping | dnsmasq-default)
		touch "$work/dnsmasq.leases"
		extra=()
		[ "$1" = dnsmasq-noping ] && extra=(--no-ping)
		ip netns exec "$S" dnsmasq -d -C /dev/null --port=0 --interface="$SIF" --bind-interfaces \
			--dhcp-range=10.78.1.0,10.78.250.250,255.255.0.0,1h --dhcp-leasefile="$work/dnsmasq.leases" \
			--dhcp-lease-max=100000 --dhcp-authoritative --quiet-dhcp --log-facility="$work/dnsmasq.log" \
			"${extra[@]}" 2>>"$work/server.log" &
		;;
	esac
	pid=$!
	sleep 1
}

stop_server() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	pid=""
}

servers=(racklet-bolt dnsmasq-noping dnsmasq-default)
[ "$WITH_MEMORY" = 1 ] && servers+=(racklet-memory)
results="$work/results.tsv"
: >"$results"
echo "rate=$RATE/s period=${PERIOD}s rounds=$ROUNDS clients=$CLIENTS" >&2
for round in $(seq 1 "$ROUNDS"); do
	order=("${servers[@]}")
	if [ $((round % 2)) = 0 ]; then # alternate the order across rounds
		order=()
		for ((i = ${#servers[@]} - 1; i >= 0; i--)); do order+=("${servers[$i]}"); done
	fi
	for name in "${order[@]}"; do
		start_server "$name"
		timeout $((PERIOD + 60)) ip netns exec "$C" perfdhcp -4 -B -l "$CIF" -r "$RATE" -R "$CLIENTS" \
			-p "$PERIOD" -x t 10.78.0.1 >"$work/perfdhcp.out" 2>&1 || true
		stop_server
		line=$(python3 "$here/summarize.py" "$name" <"$work/perfdhcp.out")
		echo "round $round: $line" >&2
		echo "$line" >>"$results"
	done
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split("\t")
    rows.setdefault(f[0], []).append([float(x) for x in f[1:]])
def med(name, i):
    return statistics.median(r[i] for r in rows[name])
print("%-16s %9s %9s %9s %9s %9s %9s" % ("server", "leases/s", "DO p50", "DO p99", "RA p50", "RA p99", "drops"))
for name in rows:
    drops = med(name, 2) + med(name, 6)
    print("%-16s %9.1f %9.3f %9.3f %9.3f %9.3f %9.0f" % (name, med(name, 0), med(name, 3), med(name, 4),
                                                        med(name, 7), med(name, 8), drops))
if "racklet-bolt" in rows and "dnsmasq-noping" in rows:
    r, d = med("racklet-bolt", 0), med("dnsmasq-noping", 0)
    print("ratio racklet-bolt/dnsmasq-noping: leases/s %.2f, REQUEST-ACK p99 %.2f" %
          (r / d if d else float("inf"), med("racklet-bolt", 8) / med("dnsmasq-noping", 8)))
if "racklet-bolt" in rows and "dnsmasq-default" in rows:
    r, d = med("racklet-bolt", 0), med("dnsmasq-default", 0)
    if d:
        print("ratio racklet-bolt/dnsmasq-default: leases/s %.2f" % (r / d))
    else:
        print("dnsmasq-default completed no exchange in time (it pings each new address for ~3 s)")
if "racklet-bolt" in rows and "racklet-memory" in rows:
    print("cost of durable leases: racklet-bolt/racklet-memory leases/s %.2f" %
          (med("racklet-bolt", 0) / med("racklet-memory", 0)))
PY
