#!/usr/bin/env bash
# vhost_user_guest.sh - an unmodified Linux guest under QEMU uses vdk's vhost-user backends.
#
# Starts three backends: vdk-vhost-user-blk on a 64 MiB read-write image (serial vdk-rw,
# 2 request queues), vdk-vhost-user-blk on a 16 MiB read-only image (serial vdk-ro) and
# vdk-vhost-user-rng; boots the test guest (docs/guest.md) once with vhost-user-blk-pci x2 and
# vhost-user-rng-pci, 2 vCPUs, and runs tests/integration/guest-tests/vhost_user.sh in it.
#
# Checked in the guest: both disks and the rng bound to their drivers, serials, 2 hardware
# queues, a host-written pattern read back (sha256), a guest-written pattern and markers read
# back with O_DIRECT, write-back cache (FLUSH), discard, the read-only disk refusing writes,
# rng bytes. Checked on the host: the guest's pattern and markers at their offsets in the
# image, the discarded range reads zero, the read-only image unchanged, the blk backend
# counted FLUSH requests, the rng backend handed out bytes, a clean power off, and every
# backend exiting 0 when QEMU disconnects. Also: --print-capabilities is valid JSON and a
# backend waiting for a front-end exits 0 on SIGTERM and removes its socket.
#
# Environment:
#   VDK_BUILD_DIR     meson build directory with the tools (default: <repo>/build)
#   VDK_ARTIFACTS     console and backend logs (default: <repo>/build/test-artifacts/vhost_user_guest)
#   VDK_QEMU_ACCEL    kvm or tcg (default: kvm only where KVM can run Linux, see
#                     pick_accel in lib/vhost_user.sh)
#   VDK_BOOT_TIMEOUT  seconds for the boot (default: 120)
# Exit status: 0 pass, 1 fail, 77 skipped (no QEMU).
set -uo pipefail

name=vhost_user_guest
# shellcheck source-path=SCRIPTDIR source=lib/vhost_user.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/vhost_user.sh"
art="${VDK_ARTIFACTS:-$repo/build/test-artifacts/vhost_user_guest}"
boot_timeout="${VDK_BOOT_TIMEOUT:-120}"

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
qemu_accel

# --- build the backends and the guest ---------------------------------------------------------
blk="$build/tools/vdk-vhost-user-blk"
rng="$build/tools/vdk-vhost-user-rng"
guest="$repo/build/vhost-user-guest"
vhost_user_build "$guest" tools/vdk-vhost-user-blk tools/vdk-vhost-user-rng

rm -rf "$art"
mkdir -p "$art"
# Sockets need a short path (108 bytes); images live next to them.
tmp="$(mktemp -d /tmp/vdk-vu.XXXXXX)"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# --- program conventions ----------------------------------------------------------------------
for prog in "$blk" "$rng"; do
	"$prog" --print-capabilities | python3 -c 'import json, sys; c = json.load(sys.stdin); assert c["type"] in ("block", "rng"), c' ||
		fail "$(basename "$prog") --print-capabilities is not the expected JSON"
done
"$rng" --socket-path="$tmp/term.sock" 2>"$art/sigterm.log" &
p=$!
for _ in $(seq 100); do [[ -S "$tmp/term.sock" ]] && break; sleep 0.05; done
kill -TERM "$p"
wait "$p" || fail "vdk-vhost-user-rng exited $? on SIGTERM (want 0); see $art/sigterm.log"
[[ ! -e "$tmp/term.sock" ]] || fail "vdk-vhost-user-rng left its socket behind after SIGTERM"
say "conventions ok: --print-capabilities JSON, SIGTERM exits 0"

# --- images -----------------------------------------------------------------------------------
mib() { head -c $(($1 << 20)) "$2"; }
truncate -s 64M "$tmp/rw.img"
mib 1 /dev/urandom >"$tmp/host.bin"
dd if="$tmp/host.bin" of="$tmp/rw.img" bs=1M seek=1 conv=notrunc status=none
mib 1 /dev/zero | tr '\0' '\377' | dd of="$tmp/rw.img" bs=1M seek=16 conv=notrunc status=none
truncate -s 16M "$tmp/ro.img"
mib 1 /dev/urandom | dd of="$tmp/ro.img" bs=1M conv=notrunc status=none
hostsum="$(sha256sum <"$tmp/host.bin" | cut -d' ' -f1)"
rosum="$(head -c 1M "$tmp/ro.img" | sha256sum | cut -d' ' -f1)"
ro_before="$(sha256sum <"$tmp/ro.img")"

# --- backends ---------------------------------------------------------------------------------
start() { # start NAME PROGRAM ARGS...: run a backend, log in $art/NAME.log
	local log="$art/$1.log"
	shift
	"$@" >"$log" 2>&1 &
	pids+=($!)
}
start blk-rw "$blk" --socket-path="$tmp/rw.sock" --disk="$tmp/rw.img,serial=vdk-rw" --num-queues=2
start blk-ro "$blk" --socket-path="$tmp/ro.sock" --disk="$tmp/ro.img,readonly,serial=vdk-ro"
start rng "$rng" --socket-path="$tmp/rng.sock"
for _ in $(seq 100); do
	[[ -S "$tmp/rw.sock" && -S "$tmp/ro.sock" && -S "$tmp/rng.sock" ]] && break
	sleep 0.05
done
for s in rw ro rng; do
	[[ -S "$tmp/$s.sock" ]] || fail "backend socket $tmp/$s.sock did not appear; see $art"
done

# --- boot -------------------------------------------------------------------------------------
# The kernel's boot code asks the BIOS about the disks (EDD), so SeaBIOS drives each disk
# first: vdk-rw with queue 0 of its 2 and other features than Linux negotiates afterwards.
# -smp 2: Linux uses min(num-queues, vCPUs) queues; 2 vCPUs make it use both of vdk-rw's.
console="$art/console.log"
start_s="$(date +%s.%N)"
timeout -k 5 "$boot_timeout" qemu-system-x86_64 -M q35 "${accel[@]}" -smp 2 -m 512M \
	-nographic -no-reboot -nic none \
	-object memory-backend-memfd,id=mem,size=512M,share=on -numa node,memdev=mem \
	-kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 vdk.test=vhost_user vdk.hostsum=$hostsum vdk.rosum=$rosum" \
	-chardev socket,id=rw,path="$tmp/rw.sock" -device vhost-user-blk-pci,chardev=rw,num-queues=2 \
	-chardev socket,id=ro,path="$tmp/ro.sock" -device vhost-user-blk-pci,chardev=ro,num-queues=1 \
	-chardev socket,id=rng,path="$tmp/rng.sock" -device vhost-user-rng-pci,chardev=rng \
	</dev/null 2>&1 | sed -E $'s/\r//g; s/\x1b(c|\\[[0-9;?]*[A-Za-z])//g' >"$console"
qemu_status="${PIPESTATUS[0]}"
boot_s="$(awk -v s="$start_s" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')"

grep -a '^VDK-CHECK: ' "$console" | sed "s/^/$name: guest: /"
[[ "$qemu_status" == 0 ]] || fail "QEMU exited with status $qemu_status (124: timeout after ${boot_timeout}s); console: $console"
grep -qa '^VDK-TEST: vhost_user: PASS' "$console" || {
	tail -n 15 "$console" >&2
	fail "the guest test did not pass; console: $console"
}
grep -qaE 'reboot: Power down|reboot: Restarting' "$console" || fail "no clean power off in $console"

# --- backends keep listening once QEMU has gone; SIGHUP stops them cleanly ---------------------
sleep 0.5
socks=(rw ro rng)
for i in 0 1 2; do
	p="${pids[$i]}"
	kill -0 "$p" 2>/dev/null || fail "backend $p exited after QEMU left (it must keep listening); see $art"
	[[ -S "$tmp/${socks[$i]}.sock" ]] || fail "backend $p removed its socket after QEMU left; see $art"
	kill -HUP "$p"
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$p" 2>/dev/null && fail "backend $p still runs 5 s after SIGHUP; see $art"
	wait "$p" || fail "backend $p exited with status $? on SIGHUP (want 0); see $art"
	[[ ! -e "$tmp/${socks[$i]}.sock" ]] || fail "backend $p left its socket behind after SIGHUP"
done
pids=()
grep -q 'front-end disconnected' "$art/blk-rw.log" || fail "blk-rw did not see the disconnect"

# --- host-side checks of what the guest did ---------------------------------------------------
gsum="$(sed -nE 's/^VDK-DATA: guest-sum ([0-9a-f]+)$/\1/p' "$console")"
[[ -n "$gsum" ]] || fail "the guest printed no guest-sum"
[[ "$(dd if="$tmp/rw.img" bs=4096 skip=2048 count=16 status=none | sha256sum | cut -d' ' -f1)" == "$gsum" ]] ||
	fail "the 64 KiB the guest wrote at 8 MiB are not in the image"
last=$((64 * 2048 - 1))
for s in 0 4097 "$last"; do
	m="$(dd if="$tmp/rw.img" bs=512 skip="$s" count=1 status=none | tr -d '\0')"
	[[ "$m" == "vdk-guest-marker sector $s" ]] || fail "sector $s of the image holds '$m'"
done
[[ "$(dd if="$tmp/rw.img" bs=1M skip=16 count=1 status=none | tr -d '\0' | wc -c)" == 0 ]] ||
	fail "the range the guest discarded (16 MiB + 1 MiB) does not read as zeroes"
[[ "$(sha256sum <"$tmp/ro.img")" == "$ro_before" ]] || fail "the read-only image changed"
flushes="$(exit_stats "$art/blk-rw.log" device.flushes)"
[[ "${flushes:-0}" -ge 1 ]] || fail "the blk backend saw no FLUSH request ($art/blk-rw.log)"
rng_bytes="$(exit_stats "$art/rng.log" device.bytes)"
[[ "${rng_bytes:-0}" -ge 4096 ]] || fail "the rng backend handed out ${rng_bytes:-0} bytes (want >= 4096)"
say "host: guest data at 8 MiB and 3 markers in the image, discard zeroed, read-only image unchanged,"
say "host: $flushes FLUSH requests, $rng_bytes random bytes, backends kept listening, exited 0 on SIGHUP"
say "PASS ($(pick_accel), boot to power off ${boot_s} s; logs in $art)"
