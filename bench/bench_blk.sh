#!/usr/bin/env bash
# bench_blk.sh - vdk-vhost-user-blk against qemu-storage-daemon's vhost-user-blk export, same
# image, same client (vdk-blkbench), alternating runs in one invocation. See bench/README.md,
# section "vhost-user-blk".
#
# Workloads: 4 KiB randread and randwrite at iodepth 1 and 32, 128 KiB sequential read at
# iodepth 32 (override with VDK_BENCH_WORKLOADS="rw:bs:iodepth ..."). For each workload and
# each of REPS repetitions, both back-ends run once, the order swapped every repetition (vdk
# first, then qsd first, ...), each on a freshly started back-end process. The summary shows
# the median IOPS per back-end, the ratio vdk / qsd, and median p50/p99 latency.
#
# Environment:
#   VDK_BUILD_DIR      meson build directory (default: <repo>/build; built here if needed)
#   VDK_BENCH_RUNTIME  seconds per run (default 10)
#   VDK_BENCH_REPS     repetitions per workload and back-end (default 3)
#   VDK_BENCH_IMAGE    image path (default /dev/shm/vdk-bench-blk.img, 1 GiB, removed after)
#   VDK_BENCH_QSD_AIO  qemu-storage-daemon file options (default "cache.direct=on,aio=native":
#                      tmpfs accepts O_DIRECT on Linux >= 6.6)
#   VDK_BENCH_VDK_DISK options appended to vdk's --disk=IMAGE (default none, e.g. ",direct" or
#                      ",aio=io_uring")
#   VDK_BENCH_VDK_ARGS more vdk-vhost-user-blk arguments (default none, e.g. "--poll-us=0")
#   VDK_BENCH_LOG      where the raw RESULT lines go (default /tmp/vdk-bench-blk.log)
#   VDK_BENCH_BASE_BUILD  another vdk build directory (e.g. of main before a change): its
#                      vdk-vhost-user-blk, with the same options, takes qemu-storage-daemon's
#                      place as the peer ("base"), for before/after figures in one run
# Exit status: 0, 1 on an error, 77 if qemu-storage-daemon is missing.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${VDK_BUILD_DIR:-$repo/build}"
runtime="${VDK_BENCH_RUNTIME:-10}"
reps="${VDK_BENCH_REPS:-3}"
img="${VDK_BENCH_IMAGE:-/dev/shm/vdk-bench-blk.img}"
qsd_file_opts="${VDK_BENCH_QSD_AIO:-cache.direct=on,aio=native}"
vdk_disk_opts="${VDK_BENCH_VDK_DISK:-}"
read -r -a vdk_args <<<"${VDK_BENCH_VDK_ARGS:-}"
log="${VDK_BENCH_LOG:-/tmp/vdk-bench-blk.log}"
workloads="${VDK_BENCH_WORKLOADS:-randread:4k:1 randread:4k:32 randwrite:4k:1 randwrite:4k:32 read:128k:32}"
sock="$(mktemp -u /tmp/vdk-bench-blk.XXXXXX).sock"
be_pid=

cleanup() {
	[[ -n "$be_pid" ]] && kill "$be_pid" 2>/dev/null && wait "$be_pid" 2>/dev/null
	rm -f "$sock"
	[[ -z "${VDK_BENCH_IMAGE:-}" ]] && rm -f "$img"
}
trap cleanup EXIT

base="${VDK_BENCH_BASE_BUILD:-}"
peer=qsd
[[ -n "$base" ]] && peer=base
[[ -n "$base" ]] || command -v qemu-storage-daemon >/dev/null || {
	echo "bench_blk: SKIPPED: qemu-storage-daemon not installed" >&2
	exit 77
}
if [[ ! -x "$build/tools/vdk-blkbench" || ! -x "$build/tools/vdk-vhost-user-blk" ]]; then
	ninja -C "$build" tools/vdk-blkbench tools/vdk-vhost-user-blk >/dev/null || exit 1
fi

# 1 GiB, every page allocated (a hole on tmpfs reads the zero page and costs a fault on the
# first write, which would favour whoever runs second).
if [[ ! -f "$img" ]]; then
	truncate -s 1G "$img" && fallocate -l 1G "$img" || exit 1
fi

start_backend() {
	rm -f "$sock"
	if [[ $1 == vdk || $1 == base ]]; then
		local b="$build"
		[[ $1 == base ]] && b="$base"
		"$b/tools/vdk-vhost-user-blk" --socket-path="$sock" \
			--disk="$img$vdk_disk_opts" "${vdk_args[@]}" >/dev/null 2>&1 &
	else
		qemu-storage-daemon \
			--blockdev "driver=file,node-name=file,filename=$img,$qsd_file_opts" \
			--export "type=vhost-user-blk,id=exp0,node-name=file,addr.type=unix,addr.path=$sock,writable=on" \
			>/dev/null 2>&1 &
	fi
	be_pid=$!
	for _ in $(seq 200); do
		[[ -S "$sock" ]] && return 0
		sleep 0.05
	done
	echo "bench_blk: $1 did not start" >&2
	exit 1
}

stop_backend() {
	kill "$be_pid" 2>/dev/null
	wait "$be_pid" 2>/dev/null
	be_pid=
}

one_run() { # backend rw bs iodepth
	local out
	start_backend "$1"
	out=$("$build/tools/vdk-blkbench" --socket-path "$sock" --rw "$2" --bs "$3" \
		--iodepth "$4" --runtime "$runtime" | grep '^RESULT') || {
		stop_backend
		echo "bench_blk: $1 $2 $3 $4 failed" >&2
		exit 1
	}
	stop_backend
	echo "backend=$1 $out" >>"$log"
	echo "bench_blk: $1 $out" >&2
	echo "backend=$1 $out"
}

echo "# bench_blk $(date -u +%FT%TZ) runtime=${runtime}s reps=$reps qsd=$qsd_file_opts" \
	"vdk=--disk=IMAGE$vdk_disk_opts ${vdk_args[*]} cpus=$(nproc) kernel=$(uname -r)" |
	tee -a "$log"
results=()
for w in $workloads; do
	IFS=: read -r rw bs qd <<<"$w"
	for ((r = 0; r < reps; r++)); do
		if ((r % 2 == 0)); then order=(vdk "$peer"); else order=("$peer" vdk); fi
		for be in "${order[@]}"; do
			results+=("$(one_run "$be" "$rw" "$bs" "$qd")") || exit 1
		done
	done
done

printf '%s\n' "${results[@]}" | PEER="$peer" python3 -c '
import os, sys, statistics
p = os.environ["PEER"]
rows = {}
for line in sys.stdin:
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    key = (kv["rw"], int(kv["bs"]), int(kv["iodepth"]))
    rows.setdefault(key, {}).setdefault(kv["backend"], []).append(kv)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
print()
print(("| workload | vdk IOPS | %s IOPS | vdk/%s | vdk MiB/s | %s MiB/s | vdk p50/p99 us "
       "| %s p50/p99 us |") % (p, p, p, p))
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for (rw, bs, qd), by in rows.items():
    v, q = by["vdk"], by[p]
    vi, qi = med(v, "iops"), med(q, "iops")
    print("| %s %dk qd%d | %.0f | %.0f | %.2f | %.0f | %.0f | %.0f / %.0f | %.0f / %.0f |" % (
        rw, bs // 1024, qd, vi, qi, vi / qi if qi else 0, med(v, "mibs"), med(q, "mibs"),
        med(v, "p50_us"), med(v, "p99_us"), med(q, "p50_us"), med(q, "p99_us")))
'
