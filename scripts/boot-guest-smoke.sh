#!/usr/bin/env bash
# boot-guest-smoke.sh - smoke test of the vdk test guest under QEMU (see docs/guest.md).
#
# Builds the guest if needed (scripts/build-guest.sh) and boots it twice with QEMU's own
# virtio-rng-pci device:
#   1. default mode: expects "VDK-GUEST: ready", no failed insmod, and the rng device bound to
#      the virtio_rng driver (proves the modules and their load order work);
#   2. vdk.test=hwrng with a tests directory holding hwrng.sh: expects
#      "VDK-TEST: hwrng: PASS" (proves the test protocol: /tests, verdict line, detail).
#
# Usage: scripts/boot-guest-smoke.sh
# Environment:
#   VDK_GUEST_DIR     guest to boot (default: <repo>/build/guest)
#   VDK_SMOKE_DIR     logs and the test guest (default: <repo>/build/guest-smoke)
#   VDK_QEMU_ACCEL    force "kvm" or "tcg" (default: detected, see pick_accel)
#   VDK_BOOT_TIMEOUT  seconds per boot (default: 60)
# Exit status: 0 pass, 1 fail, 77 skipped (no QEMU; the meson "skip" code).
set -euo pipefail
shopt -s inherit_errexit

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_dir="$(dirname "$script_dir")"
readonly script_dir repo_dir
guest_dir="${VDK_GUEST_DIR:-$repo_dir/build/guest}"
smoke_dir="${VDK_SMOKE_DIR:-$repo_dir/build/guest-smoke}"
boot_timeout="${VDK_BOOT_TIMEOUT:-60}"

fail() {
	echo "boot-guest-smoke: FAIL: $*" >&2
	exit 1
}

qemu="qemu-system-x86_64"
if ! command -v "$qemu" >/dev/null; then
	echo "boot-guest-smoke: SKIPPED: $qemu not installed (apt-get install qemu-system-x86)" >&2
	exit 77
fi

# pick_accel: print "kvm" only when KVM can run a stock Linux kernel, else "tcg". KVM backed by
# PVM (kvm_pvm module) cannot, and without vmx/svm in the CPU flags there is no hardware
# virtualisation to use.
pick_accel() {
	if [[ -n "${VDK_QEMU_ACCEL:-}" ]]; then
		echo "$VDK_QEMU_ACCEL"
	elif [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
		echo tcg
	elif grep -qs '^kvm_pvm ' /proc/modules; then
		echo tcg
	elif ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
		echo tcg
	else
		echo kvm
	fi
}
accel="$(pick_accel)"
case "$accel" in
kvm) accel_opts=(-enable-kvm -cpu host) ;;
tcg) accel_opts=(-accel tcg) ;;
*) fail "VDK_QEMU_ACCEL must be kvm or tcg, not '$accel'" ;;
esac

# boot NAME GUEST_DIR APPEND...: boot GUEST_DIR with the extra kernel arguments, console to
# $smoke_dir/NAME.log (carriage returns and the firmware's terminal escapes stripped). Sets boot_seconds and boot_status.
boot() {
	local name="$1" dir="$2" log="$smoke_dir/$1.log" start end
	shift 2
	start="$(date +%s.%N)"
	boot_status=0
	# -nic none: no network card, so SeaBIOS does not spend time in the iPXE option ROM.
	timeout -k 5 "$boot_timeout" "$qemu" -M q35 "${accel_opts[@]}" -m 512 \
		-nographic -no-reboot -nic none \
		-kernel "$dir/vmlinuz" -initrd "$dir/initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1 $*" \
		-device virtio-rng-pci </dev/null 2>&1 |
		sed -E $'s/\r//g; s/\x1b(c|\\[[0-9;?]*[A-Za-z])//g' >"$log" || boot_status=$?
	end="$(date +%s.%N)"
	boot_seconds="$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')"
	if [[ "$boot_status" == 124 || "$boot_status" == 137 ]]; then
		fail "$name: QEMU did not power off within ${boot_timeout}s; console log: $log"
	fi
	[[ "$boot_status" == 0 ]] || fail "$name: QEMU exited with status $boot_status; see $log"
}

# expect NAME PATTERN WHAT: fail unless the console log of boot NAME has a line matching the
# extended regular expression PATTERN. Patterns are not anchored at the line start: console
# output from firmware or kernel may share a line with the guest's.
expect() {
	local log="$smoke_dir/$1.log"
	grep -qaE -- "$2" "$log" || {
		echo "--- last lines of $log:" >&2
		tail -n 20 "$log" >&2
		fail "$1: $3 (no line matching '$2')"
	}
}

# Guest-side time of power off, from the kernel's "[   2.53] reboot: Power down" line.
guest_seconds() {
	sed -nE 's/^\[ *([0-9]+\.[0-9]+)\] reboot: Power down.*/\1/p' "$smoke_dir/$1.log" | tail -n 1
}

mkdir -p "$smoke_dir"
"$script_dir/build-guest.sh" "$guest_dir" || fail "building the guest failed"

# --- Boot 1: default mode ----------------------------------------------------------------------
boot default "$guest_dir"
expect default 'VDK-GUEST: ready$' "the guest did not report ready"
expect default 'VDK-GUEST: kernel .*, [0-9]+ modules loaded, 0 failed$' "a module failed to load"
expect default 'VDK-GUEST: virtio virtio[0-9]+ id 0x0004 driver virtio_rng on ' \
	"the virtio-rng-pci device was not bound to the virtio_rng driver"
echo "boot-guest-smoke: default boot ok ($accel): ${boot_seconds}s wall," \
	"power off at $(guest_seconds default)s guest time"

# --- Boot 2: test protocol ---------------------------------------------------------------------
# The test reads from /dev/hwrng, i.e. through the device's virtqueue. The file is rewritten
# only when its text changes, so build-guest.sh can keep the test guest it built last time.
tests_dir="$smoke_dir/tests"
mkdir -p "$tests_dir"
# shellcheck disable=SC2016 # expanded by the guest, not here
hwrng_test='#!/bin/sh
# Read 64 bytes from the hardware RNG; pass if all arrived.
n="$(dd if=/dev/hwrng bs=64 count=1 2>/dev/null | wc -c)"
echo "read $n bytes from $(cat /sys/class/misc/hw_random/rng_current)" >"$VDK_TEST_DETAIL"
[ "$n" -eq 64 ]
'
if [[ "$(cat "$tests_dir/hwrng.sh" 2>/dev/null)" != "${hwrng_test%$'\n'}" ]]; then
	printf '%s' "$hwrng_test" >"$tests_dir/hwrng.sh"
fi
"$script_dir/build-guest.sh" "$smoke_dir/guest" "$tests_dir" || fail "building the test guest failed"

boot hwrng "$smoke_dir/guest" vdk.test=hwrng
expect hwrng 'VDK-TEST: hwrng: PASS read 64 bytes from virtio_rng\.[0-9]+$' \
	"the hwrng test did not pass"
echo "boot-guest-smoke: test boot ok: ${boot_seconds}s wall," \
	"power off at $(guest_seconds hwrng)s guest time"

echo "boot-guest-smoke: PASS (logs in $smoke_dir)"
