#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# bench_blk_cpu.sh - CPU time the vdk-vhost-user-blk back-end spends per
# request (user + system seconds / requests, from /usr/bin/time), for the
# build under test and a base build (e.g. the commit before a change),
# alternating in one invocation. On a shared, loaded machine IOPS swing by
# ±50 % between runs of one binary; the back-end's CPU time per request is
# what a change to its request path moves, and it varies much less.
#
# Each run: a fresh back-end, vdk-blkbench (of the build under test) sends
# VDK_BENCH_IOS requests of one workload, disconnects; the back-end exits
# and /usr/bin/time reports its CPU time.
#
# Environment:
#   VDK_BUILD_DIR          build under test (default <repo>/build)
#   VDK_BENCH_BASE_BUILD   base build (required)
#   VDK_BENCH_REPS         repetitions per workload and build (default 5)
#   VDK_BENCH_IOS          requests per run (default 200000)
#   VDK_BENCH_WORKLOADS    "rw:bs:iodepth ..." (default randread:4k:1 randread:4k:32
#                          randwrite:4k:32)
#   VDK_BENCH_IMAGE        image (default /dev/shm/vdk-bench-cpu.img, 256 MiB, removed after)
# Exit: 0, 1 on an error.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VDK_BUILD_DIR:-$repo/build}"
base="${VDK_BENCH_BASE_BUILD:?set VDK_BENCH_BASE_BUILD to the base build directory}"
reps="${VDK_BENCH_REPS:-5}"
ios="${VDK_BENCH_IOS:-200000}"
workloads="${VDK_BENCH_WORKLOADS:-randread:4k:1 randread:4k:32 randwrite:4k:32}"
img="${VDK_BENCH_IMAGE:-/dev/shm/vdk-bench-cpu.img}"
sock="$(mktemp -u /tmp/vdk-bench-cpu.XXXXXX).sock"
tfile="$(mktemp)"
trap 'rm -f "$sock" "$tfile"; [[ -z "${VDK_BENCH_IMAGE:-}" ]] && rm -f "$img"' EXIT
[[ -x /usr/bin/time ]] || { echo "bench_blk_cpu: needs /usr/bin/time (Debian: time)" >&2; exit 1; }
if [[ ! -f "$img" ]]; then
	truncate -s 256M "$img" && fallocate -l 256M "$img" || exit 1
fi

one_run() { # dir rw bs qd -> prints "cpu_us_per_io"
	local dir=$1 rw=$2 bs=$3 qd=$4 pid bytes
	rm -f "$sock"
	# Exit after the one front-end: --once where the build has it (it keeps
	# listening by default), which older builds did anyway.
	local once=()
	"$dir/tools/vdk-vhost-user-blk" --help | grep -q -- --once && once=(--once)
	/usr/bin/time -f "%U %S" -o "$tfile" "$dir/tools/vdk-vhost-user-blk" \
		--socket-path="$sock" --disk="$img" "${once[@]}" >/dev/null 2>&1 &
	pid=$!
	for _ in $(seq 200); do [[ -S "$sock" ]] && break; sleep 0.05; done
	bytes=$((ios * ${bs%k} * 1024))
	"$build/tools/vdk-blkbench" --socket-path "$sock" --rw "$rw" --bs "$bs" \
		--iodepth "$qd" --total "$bytes" --runtime 600 >/dev/null || return 1
	wait "$pid"
	awk -v n="$ios" '{ printf "%.3f\n", ($1 + $2) * 1e6 / n }' "$tfile"
}

echo "# bench_blk_cpu $(date -u +%FT%TZ) ios=$ios reps=$reps base=$base cpus=$(nproc)"
echo "| workload | base CPU us/req | new CPU us/req | new/base |"
echo "| --- | ---: | ---: | ---: |"
for w in $workloads; do
	IFS=: read -r rw bs qd <<<"$w"
	b=() n=()
	for ((r = 0; r < reps; r++)); do
		if ((r % 2 == 0)); then
			b+=("$(one_run "$base" "$rw" "$bs" "$qd")") || exit 1
			n+=("$(one_run "$build" "$rw" "$bs" "$qd")") || exit 1
		else
			n+=("$(one_run "$build" "$rw" "$bs" "$qd")") || exit 1
			b+=("$(one_run "$base" "$rw" "$bs" "$qd")") || exit 1
		fi
	done
	echo "bench_blk_cpu: $w base ${b[*]} new ${n[*]}" >&2
	python3 - "$rw $bs qd$qd" "${b[*]}" "${n[*]}" <<'PY'
import statistics, sys
b = statistics.median(map(float, sys.argv[2].split()))
n = statistics.median(map(float, sys.argv[3].split()))
print("| %s | %.3f | %.3f | %.3f |" % (sys.argv[1], b, n, n / b))
PY
done
