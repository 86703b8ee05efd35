#!/usr/bin/env bash
# bench_net.sh - vdk-vhost-user-net --loopback against DPDK's vhost PMD, side by side.
#
# The client is the same for both: dpdk-testpmd with net_virtio_user (a vhost-user front-end)
# in io forwarding, --port-topology=loop --tx-first: a first burst of packets of the chosen
# size then circulates between client and backend, and the client's receive rate (packets it
# received from the start of forwarding to a SIGINT SECONDS_PER_RUN later) is the result,
# the median over ROUNDS runs of each. The backends:
#   dpdk   dpdk-testpmd --vdev=net_vhost0 in io forwarding, --port-topology=loop
#   vdk    vdk-vhost-user-net --loopback $VDK_NET_ARGS (default --busy-poll=50)
# Each backend runs on CPU 0 (testpmd: two lcores on CPU 0), the client on CPU 1. Runs
# alternate (dpdk, vdk, dpdk, vdk, ...) so that a busy machine hurts both alike. No hugepages,
# no NIC: --no-huge -m 1024 --single-file-segments --no-pci. Both sides run at nice NICE
# (default -10, when root) so that other jobs on a shared machine disturb the runs less.
#
# Usage: bench/bench_net.sh   (env: BUILD=build, ROUNDS=5, SECONDS_PER_RUN=10, SIZES="64 1500", NICE, VDK_NET_ARGS,
#        KEEP_LOGS=DIR to keep each run's client and backend logs)
# Prints one line per size: "net <size> B: dpdk X Mpps, vdk Y Mpps, ratio Y/X" (medians).
# Exit status: 0, 1 on failure, 77 if dpdk-testpmd is missing (apt-get install dpdk-dev).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$repo/build}"
ROUNDS="${ROUNDS:-5}"
SECS="${SECONDS_PER_RUN:-10}"
SIZES="${SIZES:-64 1500}"
NICE="${NICE:--10}"
# vdk-vhost-user-net's extra options: DPDK's PMD polls all the time; vdk looks at an emptied
# queue for 50 us before sleeping (--busy-poll). VDK_NET_ARGS= for the plain event-driven backend.
VDK_NET_ARGS="${VDK_NET_ARGS---busy-poll=50}"
[[ "$(id -u)" == 0 ]] || NICE=0

command -v dpdk-testpmd >/dev/null || {
	echo "bench_net: SKIPPED: dpdk-testpmd not installed (apt-get install dpdk-dev)" >&2
	exit 77
}
[[ "$(nproc)" -ge 2 ]] || {
	echo "bench_net: SKIPPED: needs 2 CPUs" >&2
	exit 77
}
ninja -C "$BUILD" tools/vdk-vhost-user-net >/dev/null || exit 1
net="$BUILD/tools/vdk-vhost-user-net"
tmp="$(mktemp -d /tmp/vdk-bench-net.XXXXXX)"
backend=""
trap '[[ -n "$backend" ]] && kill "$backend" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

eal=(--no-huge -m 1024 --single-file-segments --no-pci)

# run KIND SIZE: one run; prints the packets per second the client received.
run() {
	local kind="$1" size="$2" sock="$tmp/net.sock" log="$tmp/client.log"
	rm -f "$sock"
	if [[ "$kind" == dpdk ]]; then
		# --stats-period: runs until a signal, stdin unused.
		nice -n "$NICE" dpdk-testpmd "${eal[@]}" --file-prefix=vdkbench-peer \
			--lcores '0@0,1@0' --vdev="net_vhost0,iface=$sock,queues=1" -- \
			--forward-mode=io --port-topology=loop --total-num-mbufs=16384 \
			--stats-period=3600 </dev/null >"$tmp/backend.log" 2>&1 &
	else
		# testpmd's --no-huge memory is not a sealed memfd.
		# shellcheck disable=SC2086 # VDK_NET_ARGS: words
		nice -n "$NICE" taskset -c 0 "$net" --socket-path="$sock" --loopback \
			--allow-unsealed-memory $VDK_NET_ARGS >"$tmp/backend.log" 2>&1 &
	fi
	backend=$!
	for _ in $(seq 200); do [[ -S "$sock" ]] && break; sleep 0.05; done
	[[ -S "$sock" ]] || {
		echo "bench_net: $kind backend did not listen; $(tail -n 3 "$tmp/backend.log")" >&2
		return 1
	}
	# testpmd runs until a signal (--stats-period): SIGINT SECS after it
	# starts forwarding. The result is its total received packets over
	# that time (its per-second figures are not printed reliably when the
	# machine is loaded: the printing thread shares the polling CPU).
	nice -n "$NICE" dpdk-testpmd "${eal[@]}" \
		--file-prefix=vdkbench-client \
		--lcores '0@1,1@1' --vdev="net_virtio_user0,path=$sock,queues=1" -- \
		--forward-mode=io --port-topology=loop --tx-first --txpkts="$size" \
		--total-num-mbufs=16384 --stats-period=60 </dev/null >"$log" 2>&1 &
	local client=$! t0 t1
	for _ in $(seq 600); do
		grep -aq 'start packet forwarding' "$log" && break
		kill -0 "$client" 2>/dev/null || break
		sleep 0.05
	done
	t0="$(date +%s.%N)"
	sleep "$SECS"
	t1="$(date +%s.%N)"
	kill -INT "$client" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$client" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$client" 2>/dev/null
	wait "$client" 2>/dev/null
	kill "$backend" 2>/dev/null
	wait "$backend" 2>/dev/null
	backend=""
	[[ -n "${KEEP_LOGS:-}" ]] && cp "$log" "$KEEP_LOGS/client-$kind-$size.log" &&
		cp "$tmp/backend.log" "$KEEP_LOGS/backend-$kind-$size.log"
	grep -a -A1 'Accumulated forward statistics' "$log" | grep -ao 'RX-packets: *[0-9]*' |
		grep -o '[0-9]*$' | tail -n 1 |
		awk -v t0="$t0" -v t1="$t1" '{ n = $1 } END { printf "%d\n", (n > 0 ? n / (t1 - t0) : 0) }'
}

for size in $SIZES; do
	d=() v=()
	for _ in $(seq "$ROUNDS"); do
		d+=("$(run dpdk "$size")") || exit 1
		v+=("$(run vdk "$size")") || exit 1
	done
	median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
	md="$(median "${d[@]}")"
	mv="$(median "${v[@]}")"
	# Each round's vdk/dpdk ratio (the two runs of a round are next to each other in time).
	pr=()
	for i in "${!d[@]}"; do pr+=("$(awk -v a="${v[$i]}" -v b="${d[$i]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"); done
	mr="$(median "${pr[@]}")"
	awk -v s="$size" -v d="$md" -v v="$mv" -v dr="${d[*]}" -v vr="${v[*]}" -v mr="$mr" -v pr="${pr[*]}" 'BEGIN {
		printf "net %5d B: dpdk %.3f Mpps, vdk %.3f Mpps, ratio %.2f (medians); per-round ratios %s, median %s (runs: dpdk %s; vdk %s pps)\n",
			s, d / 1e6, v / 1e6, (d > 0 ? v / d : 0), pr, mr, dr, vr }'
done
