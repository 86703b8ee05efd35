#!/usr/bin/env bash
# blkbench_peers.sh - vdk's driver side (vdk-blkbench: driver-side virtqueues over the vhost-user
# driver transport, guest memory in a memfd) drives two vhost-user-blk back-ends: vdk's own
# vdk-vhost-user-blk and QEMU's qemu-storage-daemon --export type=vhost-user-blk (a peer we did
# not write).
#
# For each back-end, on a fresh 64 MiB image in /dev/shm:
#   1. sequential 64 KiB writes of pattern A over the first 16 MiB (--total: exactly one pass),
#      then the image is checked on the host: every 8-byte word at its offset (same generator);
#   2. random 4 KiB reads over those 16 MiB checked against pattern A, iodepth 8;
#   3. random 4 KiB writes of pattern B at iodepth 16, then the whole range rewritten with B by
#      sequential 128 KiB writes, read back sequentially against B (must pass), checked on the
#      host, and read back against A (must fail: the check can fail);
#   4. a short benchmark run of each mode prints its RESULT line.
# The back-end must exit 0 when the client disconnects.
#
# Environment:
#   VDK_BUILD_DIR  meson build directory with the tools (default: <repo>/build)
# Exit status: 0 pass, 1 fail, 77 skipped (qemu-storage-daemon missing: the vdk back-end half
# still runs first, and its failure still fails the test).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${VDK_BUILD_DIR:-$repo/build}"
name=blkbench_peers
bench="$build/tools/vdk-blkbench"
vdkblk="$build/tools/vdk-vhost-user-blk"
work="$(mktemp -d /dev/shm/vdk-blkbench-peers.XXXXXX)"
be_pid=

fail() {
	echo "$name: FAIL: $*" >&2
	exit 1
}
say() { echo "$name: $*"; }
cleanup() {
	[[ -n "$be_pid" ]] && kill "$be_pid" 2>/dev/null && wait "$be_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

[[ -x "$bench" && -x "$vdkblk" ]] || fail "build $bench and $vdkblk first"

wait_socket() {
	for _ in $(seq 100); do
		[[ -S "$1" ]] && return 0
		kill -0 "$be_pid" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

start_vdk() {
	"$vdkblk" --socket-path="$1" --disk="$2" >"$work/backend.log" 2>&1 &
	be_pid=$!
}

start_qsd() {
	# tmpfs accepts O_DIRECT on current kernels, so aio=native works on /dev/shm.
	qemu-storage-daemon \
		--blockdev "driver=file,node-name=file,filename=$2,cache.direct=on,aio=native" \
		--export "type=vhost-user-blk,id=exp0,node-name=file,addr.type=unix,addr.path=$1,writable=on" \
		>"$work/backend.log" 2>&1 &
	be_pid=$!
}

stop_backend() {
	# Both keep listening until told to stop.
	local kind=$1 rc
	kill -TERM "$be_pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$be_pid" 2>/dev/null || break
		sleep 0.05
	done
	wait "$be_pid"
	rc=$?
	be_pid=
	[[ $rc -eq 0 ]] || { cat "$work/backend.log" >&2; fail "$kind back-end exited $rc"; }
}

# Run one blkbench session against a fresh back-end; "$@" are blkbench options.
session() {
	local kind=$1 img=$2
	shift 2
	local sock="$work/$kind.sock"
	rm -f "$sock"
	"start_$kind" "$sock" "$img"
	wait_socket "$sock" || { cat "$work/backend.log" >&2; fail "$kind: no socket"; }
	"$bench" --socket-path "$sock" "$@" >"$work/out" 2>&1
	local rc=$?
	stop_backend "$kind"
	cat "$work/out" >>"$work/all.log"
	grep '^RESULT' "$work/out" | sed "s/^/$name: $kind: /"
	return $rc
}

# The host-side check of pattern SEED over the first BYTES of IMG: the generator of
# tools/blkbench.c (splitmix64 of seed ^ (offset / 8)).
host_check() {
	python3 - "$1" "$2" "$3" <<'EOF'
import sys, struct
img, seed, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
M = (1 << 64) - 1
def mix(x):
    x = (x + 0x9e3779b97f4a7c15) & M
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & M
    return x ^ (x >> 31)
with open(img, 'rb') as f:
    data = f.read(size)
step = 4096 * 7 + 8  # sample words across the range, plus the last one
offs = list(range(0, size, step)) + [size - 8]
for o in offs:
    got, = struct.unpack_from('<Q', data, o)
    if got != mix(seed ^ (o >> 3)):
        sys.exit('mismatch at %d' % o)
EOF
}

check_peer() {
	local kind=$1 img="$work/$1.img" sz=$((16 << 20))
	rm -f "$img"
	truncate -s 64M "$img"
	say "$kind: write pattern 11 over 16 MiB"
	session "$kind" "$img" --rw write --bs 64k --iodepth 4 --size $sz --total $sz \
		--pattern 11 --runtime 30 || fail "$kind: patterned write"
	grep -q "ios=256 errors=0" "$work/out" || fail "$kind: expected 256 writes"
	host_check "$img" 11 $sz || fail "$kind: the image does not hold pattern 11"
	say "$kind: random reads check pattern 11"
	session "$kind" "$img" --rw randread --bs 4k --iodepth 8 --size $sz --runtime 1 \
		--pattern 11 || fail "$kind: random reads of pattern 11"
	say "$kind: random writes, then pattern 12 sequentially, read back"
	session "$kind" "$img" --rw randwrite --bs 4k --iodepth 16 --size $sz --runtime 1 \
		--pattern 12 || fail "$kind: random writes"
	session "$kind" "$img" --rw write --bs 128k --iodepth 8 --size $sz --total $sz \
		--pattern 12 --runtime 30 || fail "$kind: rewrite"
	session "$kind" "$img" --rw read --bs 128k --iodepth 8 --size $sz --total $sz \
		--pattern 12 --runtime 30 || fail "$kind: sequential read of pattern 12"
	host_check "$img" 12 $sz || fail "$kind: the image does not hold pattern 12"
	# The check must be able to fail: pattern 11 is gone.
	if session "$kind" "$img" --rw read --bs 128k --iodepth 8 --size $sz --total $sz \
		--pattern 11 --runtime 30; then
		fail "$kind: a read of a stale pattern passed"
	fi
	grep -q "data mismatch" "$work/out" || fail "$kind: no mismatch reported"
	say "$kind: short benchmark runs"
	for mode in randread randwrite read; do
		session "$kind" "$img" --rw $mode --bs 4k --iodepth 32 --runtime 0.5 ||
			fail "$kind: $mode run"
	done
	"$bench" --help | grep -q -- --socket-path || fail "--help"
	say "$kind: ok"
}

check_peer vdk
if ! command -v qemu-storage-daemon >/dev/null; then
	echo "$name: SKIPPED: qemu-storage-daemon not installed (Debian: apt-get install" \
		"qemu-system-common); the vdk back-end passed" >&2
	exit 77
fi
check_peer qsd
say "PASS"
exit 0
