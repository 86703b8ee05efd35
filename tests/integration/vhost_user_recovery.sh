#!/usr/bin/env bash
# vhost_user_recovery.sh - a real guest breaks a ring rule on vdk's vhost-user rng, resets the
# device and uses it again.
#
# QEMU serves vhost-user-rng-pci from vdk-vhost-user-rng to the test guest (docs/guest.md),
# which runs tests/integration/guest-tests/recovery.sh: with the kernel's driver unbound it
# drives the device through its BAR with busybox devmem, puts an out-of-range head on the
# available ring and notifies, resets the device and binds the kernel's driver again. QEMU
# 7.2 then sends GET_VRING_BASE and SET_VRING_* again, with neither RESET_DEVICE nor a
# feature change; the ring must start clean and serve /dev/hwrng. Checked on the host: the
# backend reported the broken queue, handed out bytes afterwards, and exited 0 when QEMU left.
#
# Environment: VDK_BUILD_DIR, VDK_ARTIFACTS, VDK_QEMU_ACCEL (kvm|tcg), VDK_BOOT_TIMEOUT (120).
# Exit status: 0 pass, 1 fail, 77 skipped (no QEMU).
set -uo pipefail

name=vhost_user_recovery
# shellcheck source-path=SCRIPTDIR source=lib/vhost_user.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/vhost_user.sh"
art="${VDK_ARTIFACTS:-$repo/build/test-artifacts/vhost_user_recovery}"
boot_timeout="${VDK_BOOT_TIMEOUT:-120}"

command -v qemu-system-x86_64 >/dev/null ||
	skip "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
qemu_accel

rng="$build/tools/vdk-vhost-user-rng"
guest="$repo/build/vhost-user-guest"
vhost_user_build "$guest" tools/vdk-vhost-user-rng

rm -rf "$art"
mkdir -p "$art"
tmp="$(mktemp -d /tmp/vdk-vur.XXXXXX)"
pid=
cleanup() {
	[[ -n "$pid" ]] && kill "$pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

"$rng" --socket-path="$tmp/rng.sock" --once >"$art/rng.log" 2>&1 &
pid=$!
for _ in $(seq 100); do [[ -S "$tmp/rng.sock" ]] && break; sleep 0.05; done
[[ -S "$tmp/rng.sock" ]] || fail "the backend did not listen; see $art/rng.log"

console="$art/console.log"
timeout -k 5 "$boot_timeout" qemu-system-x86_64 -M q35 "${accel[@]}" -m 256M \
	-nographic -no-reboot -nic none \
	-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
	-kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
	-append "console=ttyS0 quiet panic=-1 vdk.test=recovery" \
	-chardev socket,id=rng,path="$tmp/rng.sock" -device vhost-user-rng-pci,chardev=rng \
	</dev/null 2>&1 | sed -E $'s/\r//g; s/\x1b(c|\\[[0-9;?]*[A-Za-z])//g' >"$console"
qemu_status="${PIPESTATUS[0]}"

grep -a '^VDK-CHECK: ' "$console" | sed "s/^/$name: guest: /"
[[ "$qemu_status" == 0 ]] || fail "QEMU exited with status $qemu_status (124: timeout); console: $console"
grep -qa '^VDK-TEST: recovery: PASS' "$console" || {
	tail -n 15 "$console" >&2
	fail "the guest test did not pass; console: $console"
}
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
wait "$pid" || fail "the backend exited with status $? (want 0); see $art/rng.log"
pid=
grep -q 'requestq stopped' "$art/rng.log" ||
	fail "the backend did not report the broken queue ($art/rng.log)"
bytes="$(exit_stats "$art/rng.log" device.bytes)"
[[ "${bytes:-0}" -ge 256 ]] || fail "the backend handed out ${bytes:-0} bytes (want >= 256)"
say "host: the backend reported the broken queue, then handed out $bytes random bytes"
say "PASS ($(pick_accel); logs in $art)"
