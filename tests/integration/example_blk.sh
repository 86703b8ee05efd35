#!/usr/bin/env bash
# example_blk.sh - examples/vhost_user_blk.c, a ~60-line program serving vdk's virtio-blk with
# io_uring over vhost-user, built against the *installed* library (meson install into a staging
# root, then cc ... $(pkg-config --cflags --libs vdk), linked to libvdk.so), and driven by
# vdk-blkbench on an image on ext4 (a loop-mounted ext4 file system; if it cannot be mounted,
# an ext4 directory; else SKIPPED) through two consecutive front-end connections: the first
# writes a pattern, the second (after the device was reset by the disconnect) reads it back
# at random. SIGTERM then stops the program with status 0 and its socket file gone.
#
# Environment: VDK_BUILD_DIR (default <repo>/build).
# Exit status: 0 pass, 1 fail, 77 skipped.
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${VDK_BUILD_DIR:-$repo/build}"
name=example_blk
tmp="$(mktemp -d /tmp/vdk-example.XXXXXX)"
pid=
mnt=
cleanup() {
	[[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	[[ -n "$mnt" ]] && umount "$mnt" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
say() { echo "$name: $*"; }
fail() { say "FAIL: $*"; exit 1; }
skip() { say "SKIPPED: $*"; exit 77; }

command -v pkg-config >/dev/null || skip "pkg-config not installed"
[[ -f "$build/build.ninja" ]] || meson setup "$build" "$repo" >/dev/null || fail "meson setup"
ninja -C "$build" >/dev/null || fail "build"

# --- install into a staging root and build the example against it ------------------------
meson install -C "$build" --no-rebuild --quiet --destdir "$tmp/root" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "meson install"; }
pc="$(find "$tmp/root" -name vdk.pc | head -n 1)"
[[ -n "$pc" ]] || fail "no vdk.pc installed"
export PKG_CONFIG_PATH="$(dirname "$pc")" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
flags="$(pkg-config --cflags --libs vdk)" || fail "pkg-config vdk"
libdir="$(dirname "$(find "$tmp/root" -name 'libvdk.so' | head -n 1)")"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/example" "$repo/examples/vhost_user_blk.c" $flags ||
	fail "the example does not build against the installed library ($flags)"
readelf -d "$tmp/example" | grep -q 'NEEDED.*libvdk\.so' || fail "not linked to libvdk.so"
say "built with: $flags"

# --- an image on ext4 --------------------------------------------------------------------------
truncate -s 96M "$tmp/fs.img"
mkdir "$tmp/mnt"
if mkfs.ext4 -q -F "$tmp/fs.img" 2>/dev/null && mount -o loop "$tmp/fs.img" "$tmp/mnt" 2>/dev/null; then
	mnt="$tmp/mnt"
	dir="$mnt"
	say "image on a loop-mounted ext4 file system"
elif [[ "$(stat -f -c %T "$tmp")" == ext2/ext3 ]]; then
	dir="$tmp"
	say "image on the ext4 directory $tmp (loop mount not possible here)"
else
	skip "no ext4 file system (loop mount refused and $tmp is $(stat -f -c %T "$tmp"))"
fi
img="$dir/disk.img"
fallocate -l 32M "$img" || fail "fallocate"

# --- serve, two front-ends one after the other ---------------------------------------------
sock="$tmp/blk.sock"
LD_LIBRARY_PATH="$libdir" "$tmp/example" "$img" "$sock" >"$tmp/example.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -S "$sock" ]] && break; sleep 0.05; done
[[ -S "$sock" ]] || { cat "$tmp/example.log"; fail "no socket"; }
sz=$((8 << 20))
"$build/tools/vdk-blkbench" --socket-path "$sock" --rw write --bs 64k --iodepth 4 \
	--size $sz --total $sz --pattern 21 --runtime 30 >"$tmp/1.out" 2>&1 ||
	{ cat "$tmp/1.out" "$tmp/example.log"; fail "first connection: patterned write"; }
grep -q "ios=128 errors=0" "$tmp/1.out" || { cat "$tmp/1.out"; fail "expected 128 writes"; }
kill -0 "$pid" 2>/dev/null || fail "the example exited after the first front-end"
"$build/tools/vdk-blkbench" --socket-path "$sock" --rw randread --bs 4k --iodepth 16 \
	--size $sz --runtime 2 --pattern 21 >"$tmp/2.out" 2>&1 ||
	{ cat "$tmp/2.out" "$tmp/example.log"; fail "second connection: reads of the pattern"; }
grep '^RESULT' "$tmp/1.out" "$tmp/2.out" | sed "s/^[^:]*:/$name: /"
grep -q "errors=0 mismatches=0" "$tmp/2.out" || fail "second connection: errors or mismatches"

kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
[[ $rc -eq 0 ]] || { cat "$tmp/example.log"; fail "exit status $rc on SIGTERM"; }
[[ -e "$sock" ]] && fail "socket file left behind"
say "PASS (installed library, io_uring on ext4, two front-ends, clean stop)"
