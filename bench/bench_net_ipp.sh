#!/usr/bin/env bash
# bench_net_ipp.sh - instructions per packet of vdk-vhost-user-net --loopback, a stable
# figure for work on the data path (the Mpps of bench_net.sh swing with the machine's load).
#
# The backend runs under valgrind --tool=callgrind, counting only inside net_tx_process()
# (the whole loopback data path: transmit chain, checks, the one copy into a receive chain,
# used updates; busy polling off, so no waiting is counted); the client is bench_net.sh's
# testpmd net_virtio_user (io forwarding, --tx-first, 32 packets circulating). It prints,
# for each size, the instructions counted divided by the packets net_rx_direct() delivered.
#
# Usage: [BUILD=build] [SIZES="64 1500"] [SECONDS_PER_RUN=12] bench/bench_net_ipp.sh
# Exit status: 0, 1 on failure, 77 if valgrind or dpdk-testpmd is missing.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${BUILD:-$repo/build}"
SIZES="${SIZES:-64 1500}"
SECS="${SECONDS_PER_RUN:-12}"

for t in valgrind callgrind_annotate dpdk-testpmd; do
	command -v "$t" >/dev/null || {
		echo "bench_net_ipp: SKIPPED: $t not installed (valgrind, dpdk-dev)" >&2
		exit 77
	}
done
[[ "$(nproc)" -ge 2 ]] || {
	echo "bench_net_ipp: SKIPPED: needs 2 CPUs" >&2
	exit 77
}
ninja -C "$BUILD" tools/vdk-vhost-user-net >/dev/null || exit 1
net="$BUILD/tools/vdk-vhost-user-net"
tmp="$(mktemp -d /tmp/vdk-bench-net-ipp.XXXXXX)"
backend=""
trap '[[ -n "$backend" ]] && kill "$backend" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT

for size in $SIZES; do
	sock="$tmp/net.sock" cg="$tmp/cg.$size"
	rm -f "$sock"
	taskset -c 0 valgrind --tool=callgrind --toggle-collect=net_tx_process \
		--callgrind-out-file="$cg" "$net" --socket-path="$sock" --loopback \
		--allow-unsealed-memory >"$tmp/backend.log" 2>&1 &
	backend=$!
	for _ in $(seq 400); do [[ -S "$sock" ]] && break; sleep 0.05; done
	[[ -S "$sock" ]] || {
		echo "bench_net_ipp: backend did not listen; $(tail -n 3 "$tmp/backend.log")" >&2
		exit 1
	}
	dpdk-testpmd --no-huge -m 1024 --single-file-segments --no-pci \
		--file-prefix=vdkbench-ipp --lcores '0@1,1@1' \
		--vdev="net_virtio_user0,path=$sock,queues=1" -- \
		--forward-mode=io --port-topology=loop --tx-first --txpkts="$size" \
		--total-num-mbufs=16384 --stats-period=60 </dev/null >"$tmp/client.log" 2>&1 &
	client=$!
	sleep "$SECS"
	kill -INT "$client" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$client" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$client" 2>/dev/null
	wait "$client" 2>/dev/null
	kill -INT "$backend" 2>/dev/null
	wait "$backend" 2>/dev/null
	backend=""
	# Inclusive cost of net_tx_process and the calls to net_rx_direct (one per packet).
	callgrind_annotate --inclusive=yes "$cg" 2>/dev/null |
		awk -v s="$size" '
			/PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
			/=> .*:net_rx_direct \(/ { c = $NF; gsub("[(,x)]", "", c); pk += c }
			END {
				if (pk == 0) { print "bench_net_ipp: no packets counted" > "/dev/stderr"; exit 1 }
				printf "net_ipp %5d B: %.0f instructions/packet (%d packets)\n", s, total / pk, pk
			}' || exit 1
done
