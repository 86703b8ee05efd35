#!/usr/bin/env bash
# bench_net.sh - vdk-vhost-user-net --loopback against DPDK's vhost PMD, side by side.
#
# The client is the same for both: dpdk-testpmd with net_virtio_user (a vhost-user front-end)
# in io forwarding, --port-topology=loop --tx-first: a first burst of packets of the chosen
# size then circulates between client and backend, and the client's receive rate (Rx-pps, the
# median of its per-second figures after a warm-up) is the result. The backends:
#   dpdk   dpdk-testpmd --vdev=net_vhost0 in io forwarding, --port-topology=loop
#   vdk    vdk-vhost-user-net --loopback
# Each backend runs on CPU 0 (testpmd: two lcores on CPU 0), the client on CPU 1. Runs
# alternate (dpdk, vdk, dpdk, vdk, ...) so that a busy machine hurts both alike. No hugepages,
# no NIC: --no-huge -m 1024 --single-file-segments --no-pci.
#
# Usage: bench/bench_net.sh   (env: BUILD=build, ROUNDS=2, SECONDS_PER_RUN=10, SIZES="64 1500")
# Prints one line per size: "net <size> B: dpdk X Mpps, vdk Y Mpps, ratio Y/X".
# Exit status: 0, 1 on failure, 77 if dpdk-testpmd is missing (apt-get install dpdk-dev).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$repo/build}"
ROUNDS="${ROUNDS:-2}"
SECS="${SECONDS_PER_RUN:-10}"
SIZES="${SIZES:-64 1500}"

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

# run KIND SIZE: one run; prints the client's median Rx-pps.
run() {
	local kind="$1" size="$2" sock="$tmp/net.sock" log="$tmp/client.log"
	rm -f "$sock"
	if [[ "$kind" == dpdk ]]; then
		sleep $((SECS + 6)) | dpdk-testpmd "${eal[@]}" --file-prefix=vdkbench-peer \
			--lcores '0@0,1@0' --vdev="net_vhost0,iface=$sock,queues=1" -- \
			--forward-mode=io --port-topology=loop --total-num-mbufs=16384 \
			>"$tmp/backend.log" 2>&1 &
	else
		# testpmd's --no-huge memory is not a sealed memfd.
		taskset -c 0 "$net" --socket-path="$sock" --loopback \
			--allow-unsealed-memory >"$tmp/backend.log" 2>&1 &
	fi
	backend=$!
	for _ in $(seq 200); do [[ -S "$sock" ]] && break; sleep 0.05; done
	[[ -S "$sock" ]] || {
		echo "bench_net: $kind backend did not listen; $(tail -n 3 "$tmp/backend.log")" >&2
		return 1
	}
	# With --stats-period testpmd runs until a signal: SIGINT after SECS.
	timeout -s INT -k 5 "$SECS" dpdk-testpmd "${eal[@]}" \
		--file-prefix=vdkbench-client \
		--lcores '0@1,1@1' --vdev="net_virtio_user0,path=$sock,queues=1" -- \
		--forward-mode=io --port-topology=loop --tx-first --txpkts="$size" \
		--total-num-mbufs=16384 --stats-period=1 </dev/null >"$log" 2>&1
	kill "$backend" 2>/dev/null
	wait "$backend" 2>/dev/null
	backend=""
	# Per-second figures after the first three (connection, warm-up).
	grep -a 'Rx-pps:' "$log" | awk '{ print $2 }' | tail -n +4 | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print v[int((NR + 1) / 2)] }'
}

for size in $SIZES; do
	d=() v=()
	for _ in $(seq "$ROUNDS"); do
		d+=("$(run dpdk "$size")") || exit 1
		v+=("$(run vdk "$size")") || exit 1
	done
	best() { printf '%s\n' "$@" | sort -n | tail -n 1; }
	bd="$(best "${d[@]}")"
	bv="$(best "${v[@]}")"
	awk -v s="$size" -v d="$bd" -v v="$bv" -v dr="${d[*]}" -v vr="${v[*]}" 'BEGIN {
		printf "net %5d B: dpdk %.3f Mpps, vdk %.3f Mpps, ratio %.2f (runs: dpdk %s; vdk %s pps)\n",
			s, d / 1e6, v / 1e6, (d > 0 ? v / d : 0), dr, vr }'
done
