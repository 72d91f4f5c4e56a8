#!/usr/bin/env bash
# Compare racklet-boot's HTTP server (boot/http, via ./bench/http) with nginx
# (sendfile on) serving the same file, in one run: 1 and 50 concurrent curl
# clients, several rounds in alternating server order, medians, and the
# ratio racklet/nginx. Both servers listen on loopback only.
#
#   bench/http/run.sh                 # 1 GiB blob, 3 rounds, 1 and 50 clients
#   SIZE=256M ROUNDS=5 CLIENTS="1 8 50" bench/http/run.sh
#
# Figures: "aggregate" is the bytes of all clients over the wall time of the
# batch; "per-client" is the median of curl's %{speed_download}. MB = 10^6 B.
set -euo pipefail

SIZE=${SIZE:-1G}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 50"}
OURS_PORT=${OURS_PORT:-18480}
NGINX_PORT=${NGINX_PORT:-18481}

cd "$(dirname "$0")/../.."
for tool in curl nginx go awk; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done
NGINX=$(command -v nginx)

work=$(mktemp -d /tmp/rkh-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "building bench server..." >&2
go build -o "$work/httpbench" ./bench/http

mkdir -p "$work/www/boot" "$work/ngx"
echo "writing a $SIZE blob..." >&2
head -c "$SIZE" /dev/urandom >"$work/www/boot/blob.img"
chmod 755 "$work/www" "$work/www/boot"
chmod 644 "$work/www/boot/blob.img"
bytes=$(stat -c %s "$work/www/boot/blob.img")
cat "$work/www/boot/blob.img" >/dev/null # into the page cache for both servers

cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/ngx/nginx.pid;
error_log $work/ngx/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_timeout 60;
	client_body_temp_path $work/ngx/body;
	proxy_temp_path $work/ngx/proxy;
	fastcgi_temp_path $work/ngx/fastcgi;
	uwsgi_temp_path $work/ngx/uwsgi;
	scgi_temp_path $work/ngx/scgi;
	server {
		listen 127.0.0.1:$NGINX_PORT;
		root $work/www;
		location /boot/ { }
	}
}
EOF

"$NGINX" -p "$work/ngx" -c "$work/nginx.conf" 2>"$work/ngx/stderr" &
pids+=($!)
"$work/httpbench" -dir "$work/www/boot" -addr "127.0.0.1:$OURS_PORT" 2>"$work/ours.stderr" &
pids+=($!)

declare -A url=(
	[racklet]="http://127.0.0.1:$OURS_PORT/boot/blob.img"
	[nginx]="http://127.0.0.1:$NGINX_PORT/boot/blob.img"
)
for name in racklet nginx; do
	ok=
	for _ in $(seq 100); do
		if curl -sf -o /dev/null -r 0-0 "${url[$name]}"; then ok=1; break; fi
		sleep 0.1
	done
	[ -n "$ok" ] || { echo "run.sh: $name did not come up" >&2; cat "$work"/*.stderr "$work/ngx/stderr" >&2; exit 1; }
done

# median prints the median of the numbers on stdin.
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# batch NAME N: N concurrent full downloads; appends "aggregate per-client"
# (MB/s) to $work/res.NAME.N.
batch() {
	local name=$1 n=$2 out="$work/batch.$1.$2" start end
	: >"$out"
	start=$(date +%s.%N)
	for _ in $(seq "$n"); do
		curl -s --max-time 1800 -o /dev/null -w '%{speed_download} %{size_download}\n' "${url[$name]}" >>"$out" &
	done
	wait_curls
	end=$(date +%s.%N)
	local agg med
	agg=$(awk -v s="$start" -v e="$end" -v n="$n" -v want="$bytes" '
		{ got += $2; if ($2 != want) short++ }
		END {
			if (NR != n || short) { printf "incomplete: %d of %d clients, %d short\n", NR, n, short > "/dev/stderr"; exit 1 }
			printf "%.1f", got / (e - s) / 1e6
		}' "$out")
	med=$(cut -d' ' -f1 "$out" | median)
	echo "$agg $(awk -v m="$med" 'BEGIN { printf "%.1f", m / 1e6 }')" >>"$work/res.$name.$n"
}

# wait_curls waits for the batch's curl jobs (not the servers).
wait_curls() {
	local p
	for p in $(jobs -p); do
		case " ${pids[*]} " in *" $p "*) ;; *) wait "$p" || true ;; esac
	done
}

echo "blob $bytes bytes, $ROUNDS rounds, clients: $CLIENTS, $(nproc) cores" >&2
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then order="racklet nginx"; else order="nginx racklet"; fi
	for n in $CLIENTS; do
		for name in $order; do
			batch "$name" "$n"
			echo "round $r, $n clients, $name: $(tail -1 "$work/res.$name.$n") (aggregate, per-client MB/s)" >&2
		done
	done
done


printf '\n%-8s %-8s %14s %14s %8s\n' clients server "aggregate MB/s" "per-client" ratio
for n in $CLIENTS; do
	oa=$(cut -d' ' -f1 "$work/res.racklet.$n" | median)
	op=$(cut -d' ' -f2 "$work/res.racklet.$n" | median)
	na=$(cut -d' ' -f1 "$work/res.nginx.$n" | median)
	np=$(cut -d' ' -f2 "$work/res.nginx.$n" | median)
	printf '%-8s %-8s %14s %14s %8s\n' "$n" nginx "$na" "$np" ""
	printf '%-8s %-8s %14s %14s %8s\n' "$n" racklet "$oa" "$op" "$(awk -v a="$oa" -v b="$na" 'BEGIN { printf "%.2fx", a / b }')"
done
