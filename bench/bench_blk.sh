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
#   VDK_BENCH_BASE_BUILD  a second vdk build directory (e.g. of the commit before a change): its
#                      vdk-vhost-user-blk runs as back-end "base" in the same rotation, and the
#                      summary adds base IOPS and the ratio vdk / base (before/after in one run)
#   VDK_BENCH_NO_QSD   1: leave qemu-storage-daemon out (with VDK_BENCH_BASE_BUILD)
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

base_build="${VDK_BENCH_BASE_BUILD:-}"
backends=(vdk qsd)
[[ "${VDK_BENCH_NO_QSD:-0}" == 1 && -n "$base_build" ]] && backends=(vdk)
[[ -n "$base_build" ]] && backends+=(base)
if [[ " ${backends[*]} " == *" qsd "* ]] && ! command -v qemu-storage-daemon >/dev/null; then
	echo "bench_blk: SKIPPED: qemu-storage-daemon not installed" >&2
	exit 77
fi
if [[ -n "$base_build" && ! -x "$base_build/tools/vdk-vhost-user-blk" ]]; then
	echo "bench_blk: no $base_build/tools/vdk-vhost-user-blk" >&2
	exit 1
fi
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
		local dir=$build
		[[ $1 == base ]] && dir=$base_build
		"$dir/tools/vdk-vhost-user-blk" --socket-path="$sock" \
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
	"vdk=--disk=IMAGE$vdk_disk_opts ${vdk_args[*]} cpus=$(nproc) kernel=$(uname -r)" \
	"backends=${backends[*]}${base_build:+ base=$base_build}" |
	tee -a "$log"
results=()
for w in $workloads; do
	IFS=: read -r rw bs qd <<<"$w"
	for ((r = 0; r < reps; r++)); do
		# rotate the order every repetition
		n=${#backends[@]}
		order=()
		for ((k = 0; k < n; k++)); do order+=("${backends[(r + k) % n]}"); done
		for be in "${order[@]}"; do
			results+=("$(one_run "$be" "$rw" "$bs" "$qd")") || exit 1
		done
	done
done

printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = {}
for line in sys.stdin:
    kv = dict(f.split("=", 1) for f in line.split() if "=" in f)
    key = (kv["rw"], int(kv["bs"]), int(kv["iodepth"]))
    rows.setdefault(key, {}).setdefault(kv["backend"], []).append(kv)
med = lambda rs, k: statistics.median(float(r[k]) for r in rs)
bes = [b for b in ("vdk", "qsd", "base") if any(b in by for by in rows.values())]
hdr = "| workload |" + "".join(" %s IOPS |" % b for b in bes)
hdr += "".join(" vdk/%s |" % b for b in bes if b != "vdk")
hdr += "".join(" %s p50/p99 us |" % b for b in bes)
print()
print(hdr)
print("| --- |" + " ---: |" * (hdr.count("|") - 2))
for (rw, bs, qd), by in rows.items():
    iops = {b: med(by[b], "iops") for b in bes}
    line = "| %s %dk qd%d |" % (rw, bs // 1024, qd)
    line += "".join(" %.0f |" % iops[b] for b in bes)
    line += "".join(" %.3f |" % (iops["vdk"] / iops[b] if iops[b] else 0) for b in bes if b != "vdk")
    line += "".join(" %.0f / %.0f |" % (med(by[b], "p50_us"), med(by[b], "p99_us")) for b in bes)
    print(line)
'
