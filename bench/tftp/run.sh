#!/usr/bin/env bash
# TFTP throughput: racklet-boot vs dnsmasq vs tftpd-hpa (lock-step, curl),
# and racklet-boot windowed vs its own lock-step (atftp, RFC 7440), with
# atftpd as the windowed reference when it is available.
#
# Everything runs inside a private network namespace on its loopback, so
# dnsmasq can have port 69 and no other traffic shares the link. Needs root,
# curl, atftp, dnsmasq and in.tftpd (apt-get install -y tftpd-hpa); atftpd
# is found on PATH or in $ATFTPD (it conflicts with tftpd-hpa as a package:
# `apt-get download atftpd && dpkg -x atftpd_*.deb DIR`).
#
#   bench/tftp/run.sh                 # 64 MiB file, 3 rounds
#   SIZE_MIB=16 ROUNDS=5 bench/tftp/run.sh
#   RACKLET_TFTP=/path/to/binary bench/tftp/run.sh   # skip `go build`
#   PARTS="delay" bench/tftp/run.sh                  # only some parts
#   PROFILE=/tmp/tftp.pprof bench/tftp/run.sh        # CPU profile of racklet's server, top lines printed
#
# Parts: "servers" (curl, lock-step, three servers at each blksize),
# "window" (atftp windowsize 1/16/32/64 straight over loopback) and "delay"
# (the same through a relay that delays each datagram by DELAY each way, on
# a DELAY_MIB file: loopback's round trip is so short that lock-step is
# bound by per-packet CPU, not by waiting; the relay makes waiting matter as
# on a LAN. Go's timers make the real delay coarser than DELAY: the script
# prints the round trip it measured).
#
# Servers alternate order each round; figures are medians in MB/s
# (10^6 bytes/s), and ratios compare servers within this one run. The
# "servers" part also reads each server's CPU time (user + system, its
# reaped children included: tftpd-hpa forks one per transfer) around every
# transfer and prints CPU seconds per GB sent, with racklet/dnsmasq and
# racklet/tftpd-hpa ratios. The machine's load average is printed first.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-64}
ROUNDS=${ROUNDS:-3}
BLKSIZES=${BLKSIZES:-"512 1468 65464"}
WINDOWS=${WINDOWS:-"16 32 64"}
PARTS=${PARTS:-"servers window delay"}
DELAY=${DELAY:-200us}
DELAY_MIB=${DELAY_MIB:-8}
ATFTPD=${ATFTPD:-$(command -v atftpd || echo /tmp/atftpd/root/usr/sbin/atftpd)}
PROFILE=${PROFILE:-}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
for t in ip curl atftp dnsmasq in.tftpd go; do
	command -v "$t" >/dev/null || { echo "run.sh: $t is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root for the network namespace" >&2; exit 1; }

ns=rkttftpb$$
work=$(mktemp -d /tmp/rkt-tftpbench.XXXXXX)
pids=()
cgroups=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	for c in "${cgroups[@]}"; do rmdir "$c" 2>/dev/null || true; done
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

in_ns() { ip netns exec "$ns" "$@"; }

ip netns add "$ns"
in_ns ip link set lo up
# in.tftpd resolves its -a address with AI_ADDRCONFIG, which fails (exit 66)
# in a namespace that has only loopback: give it one addressed link.
in_ns ip link add rktbv0 type veth peer name rktbv1
in_ns ip addr add 10.254.0.1/24 dev rktbv0
in_ns ip link set rktbv0 up
in_ns ip link set rktbv1 up

root=$work/root
mkdir -p "$root"
chmod 755 "$work" "$root" # dnsmasq and tftpd-hpa read as nobody
head -c $((SIZE_MIB << 20)) /dev/urandom >"$root/file.bin"
head -c $((DELAY_MIB << 20)) "$root/file.bin" >"$root/small.bin"
chmod 644 "$root/file.bin" "$root/small.bin"
bytes=$((SIZE_MIB << 20))

if [ -n "${RACKLET_TFTP:-}" ]; then # a prebuilt server binary
	cp "$RACKLET_TFTP" "$work/racklet-tftp"
else
	(cd "$repo" && go build -o "$work/racklet-tftp" ./bench/tftp/)
fi

# Servers, each on its own port inside the namespace.
declare -A port=([racklet]=6971 [dnsmasq]=69 [tftpd-hpa]=6970 [atftpd]=6972)
declare -A spid # server process ids, for CPU time
# Servers start with `ip netns exec` itself, not the in_ns function: a
# backgrounded function is a subshell, and $! must be the server's pid.
ip netns exec "$ns" "$work/racklet-tftp" -addr 127.0.0.1:${port[racklet]} -root "$root" ${PROFILE:+-cpuprofile "$PROFILE"} 2>"$work/racklet.log" &
pids+=($!) spid[racklet]=$!
ip netns exec "$ns" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --pid-file= --user=root \
	--bind-interfaces --interface=lo --listen-address=127.0.0.1 \
	--enable-tftp --tftp-root="$root" --tftp-max=1000 --quiet-tftp 2>"$work/dnsmasq.log" &
pids+=($!) spid[dnsmasq]=$!
ip netns exec "$ns" in.tftpd -L -s "$root" -a 127.0.0.1:${port[tftpd-hpa]} 2>"$work/tftpd.log" &
pids+=($!) spid[tftpd-hpa]=$!
servers_win=(racklet)
if [ -x "$ATFTPD" ]; then
	ip netns exec "$ns" "$ATFTPD" --daemon --no-fork --user root --group root --logfile /dev/null \
		--port ${port[atftpd]} --bind-address 127.0.0.1 "$root" 2>"$work/atftpd.log" &
	pids+=($!)
	servers_win+=(atftpd)
else
	echo "# atftpd not found (ATFTPD=$ATFTPD): windowed reference skipped"
fi
# Delaying relays in front of the windowed servers, on port + 100.
for srv in "${servers_win[@]}"; do
	port[$srv+delay]=$((port[$srv] + 100))
	ip netns exec "$ns" "$work/racklet-tftp" -addr 127.0.0.1:${port[$srv+delay]} -proxy 127.0.0.1:${port[$srv]} -delay "$DELAY" &
	pids+=($!)
done
sleep 1

has() { [[ " $PARTS " == *" $1 "* ]]; }

now() { date +%s%N; }

# Each server in a cgroup of its own (cgroup v1 cpuacct or v2), when the
# machine has them: cpu_ns SERVER reads its CPU time, children included.
declare -A cg
cgbase=""
if [ -w /sys/fs/cgroup/cpuacct ]; then
	cgbase=/sys/fs/cgroup/cpuacct
elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	cgbase=/sys/fs/cgroup
fi
for srv in racklet dnsmasq tftpd-hpa; do
	[ -n "$cgbase" ] || break
	d=$cgbase/rkt-tftpbench-$$-$srv
	mkdir "$d" 2>/dev/null && echo "${spid[$srv]}" >"$d/cgroup.procs" 2>/dev/null && cg[$srv]=$d && cgroups+=("$d") || true
done
cpu_ns() {
	local d=${cg[$1]:-}
	if [ -n "$d" ] && [ -f "$d/cpuacct.usage" ]; then
		cat "$d/cpuacct.usage"
	elif [ -n "$d" ] && [ -f "$d/cpu.stat" ]; then
		awk '$1 == "usage_usec" {print $2 * 1000}' "$d/cpu.stat"
	else # user + system ticks of the process and its reaped children
		awk -v hz="$(getconf CLK_TCK)" '{printf "%d\n", ($14 + $15 + $16 + $17) * 1e9 / hz}' "/proc/${spid[$1]}/stat"
	fi
}

# fetch CLIENT SERVER BLKSIZE WINDOW OUT [FILE]: one transfer, prints seconds.
fetch() {
	local client=$1 srv=$2 blk=$3 win=$4 out=$5 file=${6:-file.bin} t0 t1
	t0=$(now)
	case $client in
	curl) in_ns curl -sS --max-time 300 --tftp-blksize "$blk" -o "$out" "tftp://127.0.0.1:${port[$srv]}/$file" ;;
	atftp) in_ns atftp --option "blksize $blk" --option "windowsize $win" --get -r "$file" -l "$out" 127.0.0.1 "${port[$srv]}" >/dev/null 2>&1 ;;
	esac
	t1=$(now)
	echo "scale=6; ($t1 - $t0) / 1000000000" | bc
}

# Check every server once with each client, bytes identical.
for srv in racklet dnsmasq tftpd-hpa; do
	fetch curl "$srv" 1468 1 "$work/check" >/dev/null
	cmp -s "$work/check" "$root/file.bin" || { echo "run.sh: $srv sent different bytes to curl" >&2; exit 1; }
done
for srv in "${servers_win[@]}"; do
	fetch atftp "$srv" 1468 16 "$work/check" >/dev/null
	cmp -s "$work/check" "$root/file.bin" || { echo "run.sh: $srv sent different bytes to atftp" >&2; exit 1; }
done
rm -f "$work/check"

results=$work/results
: >"$results"
load0=$(cut -d' ' -f1-3 /proc/loadavg)
rotate() { # rotate ROUND WORDS...: the words starting at ROUND mod N
	local r=$1; shift
	local a=("$@") n=$# i
	for ((i = 0; i < n; i++)); do echo "${a[$(((r + i) % n))]}"; done
}
for ((r = 0; r < ROUNDS; r++)); do
	if has servers; then
		for blk in $BLKSIZES; do
			for srv in $(rotate "$r" racklet dnsmasq tftpd-hpa); do
				c0=$(cpu_ns "$srv")
				secs=$(fetch curl "$srv" "$blk" 1 /dev/null)
				sleep 0.2 # tftpd-hpa's child exits after the last ACK
				echo "cpu $srv $blk $(($(cpu_ns "$srv") - c0))" >>"$results"
				echo "curl $srv $blk 1 $secs" >>"$results"
			done
		done
	fi
	for win in 1 $WINDOWS; do
		for srv in $(rotate "$r" "${servers_win[@]}"); do
			if has window; then
				echo "atftp $srv 1468 $win $(fetch atftp "$srv" 1468 "$win" /dev/null)" >>"$results"
			fi
			if has delay; then
				echo "delay $srv 1468 $win $(fetch atftp "$srv+delay" 1468 "$win" /dev/null small.bin)" >>"$results"
			fi
		done
	done
done

# median KEY: median seconds of the results starting with KEY.
median() {
	grep "^$1 " "$results" | awk '{print $NF}' | sort -g |
		awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
mbps() { echo "scale=1; $bytes / $1 / 1000000" | bc; } # uses $bytes
ratio() { echo "scale=2; $2 / $1" | bc; } # ratio FAST SLOW seconds: how many times faster

windowed() { # windowed KIND LABEL BYTES
	local kind=$1 bytes=$3 srv base m
	echo "$2"
	for srv in "${servers_win[@]}"; do
		base=$(median "$kind $srv 1468 1")
		printf '%-10s windowsize 1:  %7s MB/s\n' "$srv" "$(bytes=$bytes mbps "$base")"
		for win in $WINDOWS; do
			m=$(median "$kind $srv 1468 $win")
			printf '%-10s windowsize %-3s %7s MB/s  %5sx its lock-step\n' "$srv" "$win:" "$(bytes=$bytes mbps "$m")" "$(ratio "$m" "$base")"
		done
	done
	if [ "${#servers_win[@]}" = 2 ]; then
		for win in 1 $WINDOWS; do
			printf 'racklet/atftpd at windowsize %s: %sx\n' "$win" "$(ratio "$(median "$kind racklet 1468 $win")" "$(median "$kind atftpd 1468 $win")")"
		done
	fi
}

echo "# $SIZE_MIB MiB, $ROUNDS rounds, servers alternating, medians; MB/s = 10^6 bytes/s; load average before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
if has servers; then
	echo "# lock-step over loopback, curl $(curl -V | head -1 | cut -d' ' -f2)"
	printf '%-8s %12s %12s %12s %16s %16s\n' blksize racklet dnsmasq tftpd-hpa racklet/dnsmasq racklet/tftpd-hpa
	for blk in $BLKSIZES; do
		a=$(median "curl racklet $blk 1") b=$(median "curl dnsmasq $blk 1") c=$(median "curl tftpd-hpa $blk 1")
		printf '%-8s %9s MB/s %7s MB/s %7s MB/s %16s %16s\n' "$blk" "$(mbps "$a")" "$(mbps "$b")" "$(mbps "$c")" \
			"$(ratio "$a" "$b")" "$(ratio "$a" "$c")"
	done
	how="/proc stat: tftpd-hpa's children missing"
	[ -n "$cgbase" ] && how="cgroups under $cgbase"
	echo "# server CPU (children included; $how) per GB sent, all rounds; ratio < 1: racklet is cheaper"
	printf '%-8s %12s %12s %12s %16s %16s\n' blksize racklet dnsmasq tftpd-hpa racklet/dnsmasq racklet/tftpd-hpa
	for blk in $BLKSIZES; do
		declare -A cpg=()
		for srv in racklet dnsmasq tftpd-hpa; do
			t=$(grep "^cpu $srv $blk " "$results" | awk '{s += $4} END {printf "%.0f", s}')
			cpg[$srv]=$(echo "scale=2; $t / ($bytes * $ROUNDS)" | bc) # ns per byte = s per GB
		done
		printf '%-8s %10s s %10s s %10s s %16s %16s\n' "$blk" "${cpg[racklet]}" "${cpg[dnsmasq]}" "${cpg[tftpd-hpa]}" \
			"$(ratio "${cpg[dnsmasq]}" "${cpg[racklet]}")" "$(ratio "${cpg[tftpd-hpa]}" "${cpg[racklet]}")"
	done
fi
has window && windowed atftp "# windowed (RFC 7440) over loopback, $(atftp --version 2>&1 | head -1), blksize 1468" "$bytes"
if has delay; then
	small=$((DELAY_MIB << 20))
	rtt=$(echo "scale=2; $(median "delay racklet 1468 1") * 1000 * 1468 / $small" | bc)
	windowed delay "# windowed through the relay ($DELAY each way requested, measured lock-step round trip ${rtt} ms), $DELAY_MIB MiB, blksize 1468" "$small"
fi

if [ -n "$PROFILE" ]; then # stop racklet's server so it writes the profile
	kill -TERM "${spid[racklet]}"
	wait "${spid[racklet]}" 2>/dev/null || true
	echo "# CPU profile of racklet's server: $PROFILE (go tool pprof -top $work/racklet-tftp $PROFILE)"
	go tool pprof -top -nodecount=25 "$PROFILE" 2>/dev/null | sed -n '1,32p'
fi
