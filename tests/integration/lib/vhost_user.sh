# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# name and art are the test's; build is for the test:
# shellcheck disable=SC2154,SC2034
#
# vhost_user.sh - what the tests of vdk's vhost-user back-ends with a Linux guest under QEMU
# share (vhost_user_guest.sh, vhost_user_net.sh, vhost_user_reconnect.sh,
# vhost_user_recovery.sh; vhost_user_hostile.sh, without QEMU, its verdicts): how they report,
# the back-ends' statistics at exit, QEMU's accelerator, building the back-ends and the test guest (scripts/build-guest.sh with
# guest-tests/).
#
# The test sets name (the prefix of its lines) and, before it may fail, art (the directory of
# its logs); sourcing sets repo (the repository) and build ($VDK_BUILD_DIR, default
# <repo>/build).

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
build="${VDK_BUILD_DIR:-$repo/build}"

# skip REASON: the test cannot run here: say so on stderr, exit 77.
skip() {
	echo "$name: SKIPPED: $*" >&2
	exit 77
}
# fail WHAT: the test failed: say what and where the logs are on stderr, exit 1.
fail() {
	echo "$name: FAIL: $*" >&2
	echo "$name: logs in $art" >&2
	exit 1
}
# say TEXT: a line of the test's report.
say() { echo "$name: $*"; }

# exit_stats LOG KEY...: from the statistics document a back-end logs as its last word when it
# stops (the last JSON line of LOG), the value at each KEY, a path of members and indices such as
# "device.bytes" or "queue_pairs.1.rx_packets"; one line per KEY, empty where there is none.
exit_stats() { python3 "$repo/scripts/backend-stats.py" "$@"; }

# pick_accel: print QEMU's accelerator: $VDK_QEMU_ACCEL (kvm or tcg) when set, else kvm only
# where KVM can run a stock kernel (not PVM-backed KVM, and the CPU has vmx/svm), else tcg.
pick_accel() {
	if [[ -n "${VDK_QEMU_ACCEL:-}" ]]; then
		echo "$VDK_QEMU_ACCEL"
	elif [[ ! -w /dev/kvm ]] || grep -qs '^kvm_pvm ' /proc/modules ||
		! grep -qwE 'vmx|svm' /proc/cpuinfo; then
		echo tcg
	else
		echo kvm
	fi
}

# qemu_accel: accel, QEMU's options for pick_accel's accelerator (anything but kvm is TCG).
qemu_accel() {
	case "$(pick_accel)" in
	kvm) accel=(-enable-kvm -cpu host) ;;
	*) accel=(-accel tcg) ;;
	esac
}

# vhost_user_build GUEST TARGET...: build the ninja TARGETs (the back-ends, e.g.
# tools/vdk-vhost-user-blk) in $build, setting it up with meson first when it is not, and the
# test guest in GUEST with tests/integration/guest-tests (printing build-guest.sh's last line);
# fail when either fails.
vhost_user_build() {
	local guest=$1
	shift
	if [[ ! -f "$build/build.ninja" ]]; then
		meson setup "$build" "$repo" >/dev/null || fail "meson setup $build failed"
	fi
	ninja -C "$build" "$@" >/dev/null || fail "building $* failed"
	"$repo/scripts/build-guest.sh" "$guest" "$repo/tests/integration/guest-tests" 2>&1 | tail -n 1 ||
		fail "building the guest failed"
}
