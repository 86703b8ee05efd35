# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# harness_root is lib/vmm_harness.sh's, name the caller's:
# shellcheck disable=SC2154
#
# linux_guest.sh - what the tests and benchmarks that boot a stock Linux guest
# (scripts/build-guest.sh: Debian 12's cloud kernel, vdk's busybox initramfs) under vdk-vmm
# share on the host: building vdk-vmm and the guest, and the disks linux-vmm-tests/vmmlinux.sh
# checks. Used by tests/integration/linux_vmm.sh, linux_vmm_net.sh, vmm_vhost_user.sh,
# bench/bench_linux_vmm.sh and bench/bench_transport_linux.sh.
#
# Sourced after lib/vmm_harness.sh (it uses harness_root and harness_in_l1). The builds run on
# the host, before harness_run; inside the L1 guest the host's results are at the same paths,
# so they are skipped there. Logs are named after the caller's $name. The functions print what
# went wrong and return 1; the caller says FAIL its own way.

# vmm_build_dir FALLBACK: print the build directory to use: $VDK_BUILD_DIR; else <repo>/build
# when meson has set it up, and always inside the L1 guest (its sysroot carries the host's);
# else FALLBACK (a test then sets up a build of its own there).
vmm_build_dir() {
	if [ -n "${VDK_BUILD_DIR:-}" ]; then
		echo "$VDK_BUILD_DIR"
	elif [ -f "$harness_root/build/build.ninja" ] || harness_in_l1; then
		echo "$harness_root/build"
	else
		echo "$1"
	fi
}

# vmm_build BUILD TARGET...: set BUILD up with meson unless it is already, then build the ninja
# TARGETs (e.g. vmm/vdk-vmm, tools/vdk-vhost-user-blk) in it; vmm/vdk-vmm is left out when
# $VDK_VMM names another vdk-vmm. Output goes to /tmp/$name-setup.log and /tmp/$name-build.log;
# the build log is printed when the build fails.
vmm_build() {
	local build=$1 t targets=()
	shift
	for t in "$@"; do
		[ "$t" = vmm/vdk-vmm ] && [ -n "${VDK_VMM:-}" ] && continue
		targets+=("$t")
	done
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$harness_root" >"/tmp/$name-setup.log" 2>&1 || {
			echo "$name: meson setup $build failed (see /tmp/$name-setup.log)"
			return 1
		}
	fi
	[ "${#targets[@]}" -gt 0 ] || return 0
	ninja -C "$build" "${targets[@]}" >"/tmp/$name-build.log" 2>&1 || {
		cat "/tmp/$name-build.log"
		return 1
	}
}

# linux_guest_build DIR [TESTS_DIR [LOG]]: the guest's kernel and initramfs in DIR/guest
# (vmlinuz, initramfs.cpio.gz), by scripts/build-guest.sh, with TESTS_DIR's files in the
# initramfs's /tests (the scripts its /init runs for vdk.test=NAME; none when TESTS_DIR is
# empty). Cheap when nothing changed: build-guest.sh keeps outputs that are up to date. Its
# output goes to LOG (default DIR/build-guest.log), whose last 20 lines are printed on failure.
linux_guest_build() {
	local dir=$1 tests=${2:-} log=${3:-$1/build-guest.log}
	mkdir -p "$dir" || {
		echo "$name: cannot create $dir"
		return 1
	}
	"$harness_root/scripts/build-guest.sh" "$dir/guest" ${tests:+"$tests"} >"$log" 2>&1 || {
		tail -n 20 "$log"
		return 1
	}
}

# linux_guest_prepare BUILD DIR TESTS_DIR: what a test or benchmark that boots the Linux guest
# needs before harness_run: on the host, vdk-vmm built in BUILD (vmm_build) and the guest in
# DIR/guest with TESTS_DIR's files (linux_guest_build). Returns 1 with the reason in
# $linux_guest_why when a build failed or the guest's kernel is missing.
linux_guest_prepare() {
	local build=$1 dir=$2 tests=$3
	linux_guest_why=
	if harness_in_l1; then
		:
	elif ! vmm_build "$build" vmm/vdk-vmm; then
		linux_guest_why="building vdk-vmm failed"
	elif ! linux_guest_build "$dir" "$tests"; then
		linux_guest_why="scripts/build-guest.sh failed (see $dir/build-guest.log)"
	fi
	if [ -z "$linux_guest_why" ] && [ ! -f "$dir/guest/vmlinuz" ]; then
		linux_guest_why="$dir/guest/vmlinuz missing"
	fi
	[ -z "$linux_guest_why" ]
}

# linux_guest_disks DIR SEED: the two disks linux-vmm-tests/vmmlinux.sh checks, made afresh:
# DIR/rw.img, 4 MiB, MiB 0 pseudo-random (Python's random.Random(SEED)) and the rest zeros;
# DIR/ro.img, 1 MiB pseudo-random. Prints "RW_SHA RO_SHA", the SHA-256 of rw.img's MiB 0 and of
# ro.img (vdk.rw_sha=, vdk.ro_sha= on the guest's command line).
linux_guest_disks() {
	python3 - "$1" "$2" <<'PY'
import hashlib, random, sys
d = sys.argv[1]
rng = random.Random(int(sys.argv[2], 0))
rw, ro = rng.randbytes(1 << 20), rng.randbytes(1 << 20)
open(f"{d}/rw.img", "wb").write(rw + bytes(3 << 20))
open(f"{d}/ro.img", "wb").write(ro)
print(hashlib.sha256(rw).hexdigest(), hashlib.sha256(ro).hexdigest())
PY
}

# linux_guest_initrd_kib DIR: the size of DIR/guest/initramfs.cpio.gz in KiB rounded up to
# whole 4 KiB pages, as the guest's kernel reports it freed (vdk.initrd_kib=).
linux_guest_initrd_kib() {
	# shellcheck disable=SC2017 # rounds up to whole pages on purpose
	echo $((($(stat -c %s "$1/guest/initramfs.cpio.gz") + 4095) / 4096 * 4))
}
