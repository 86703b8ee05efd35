#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A stock Linux guest under vdk-vmm (KVM): Debian 12's cloud kernel and
# vdk's busybox initramfs (scripts/build-guest.sh, docs/guest.md) find
# vdk-vmm's virtio-mmio devices through ACPI (LNRO0005; this kernel ignores
# virtio_mmio.device=) and do disk I/O through libvdk's virtio-blk.
#
# Disks (host-made):
#   rw  4 MiB, serial vdk-linux-rw: MiB 0 holds pseudo-random bytes
#   ro  1 MiB, serial vdk-linux-ro, --disk ...,readonly
# The guest test "vmmdisk" (/tests/vmmdisk.sh, written below) finds the
# disks by serial, checks their sizes and read-only flags, reads both with
# O_DIRECT and compares their SHA-256 with the sums the host put on the
# command line, copies rw MiB 0 to MiB 2 (O_DIRECT, fsync = FLUSH) and
# reads it back, writes a text sector at MiB 3, and checks that a write to
# the read-only disk fails. /init prints "VDK-TEST: vmmdisk: PASS|FAIL"
# and powers off through ACPI. On the host: the verdict is PASS, vdk-vmm
# exits 0, rw MiB 2 equals MiB 0, the text sector is there, the read-only
# image is unchanged.
#
# KVM must be able to run a stock kernel. Where /dev/kvm is PVM-backed
# (the kvm_pvm module, as on this project's build machine) or the CPU
# shows no vmx/svm flag, it cannot: the test says so and exits 77 before
# building anything. LINUX_VMM_FORCE=1 tries anyway.
#
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED. Environment: VDK_BUILD_DIR (default
# build/ if configured, else /tmp/vdk-linux-vmm-build), VDK_VMM (default
# <build>/vmm/vdk-vmm), LINUX_VMM_DIR (guest and test files, default
# <repo>/build/linux-vmm), LINUX_VMM_TIMEOUT (seconds, default 180),
# LINUX_VMM_FORCE.
set -uo pipefail

name=linux_vmm
root=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT=${LINUX_VMM_TIMEOUT:-180}

pass() { echo "$name: PASS $*"; exit 0; }
fail() { echo "$name: FAIL $*"; exit 1; }
skip() {
	echo "SKIPPED: $name: $*" >&2
	echo "SKIPPED: $name: $*"
	exit 77
}

# ---- can this host's KVM run Linux at all? (cheap checks first) ---------------
[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m); vdk-vmm boots x86-64 guests"
[ -e /dev/kvm ] || skip "/dev/kvm does not exist (no KVM on this host)"
[[ -r /dev/kvm && -w /dev/kvm ]] || skip "/dev/kvm is not readable and writable by $(id -un)"
if [ "${LINUX_VMM_FORCE:-0}" != 1 ]; then
	if grep -qs '^kvm_pvm ' /proc/modules || [ -d /sys/module/kvm_pvm ]; then
		skip "KVM here is PVM-backed (kvm_pvm), which cannot boot a stock Linux kernel"
	fi
	grep -qsw -e vmx -e svm /proc/cpuinfo ||
		skip "the CPU shows no vmx/svm flag, so this /dev/kvm is not hardware KVM and cannot be trusted to boot a stock Linux kernel (LINUX_VMM_FORCE=1 tries anyway)"
fi
command -v python3 >/dev/null || skip "python3 not found"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"

# ---- build vdk-vmm -----------------------------------------------------------------
if [ -n "${VDK_BUILD_DIR:-}" ]; then
	build=$VDK_BUILD_DIR
elif [ -f "$root/build/build.ninja" ]; then
	build=$root/build
else
	build=/tmp/vdk-linux-vmm-build
fi
vmm=${VDK_VMM:-$build/vmm/vdk-vmm}
if [ -z "${VDK_VMM:-}" ]; then
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root" >"/tmp/$name-setup.log" 2>&1 ||
			fail "meson setup $build failed (see /tmp/$name-setup.log)"
	fi
	ninja -C "$build" vmm/vdk-vmm >"/tmp/$name-build.log" 2>&1 ||
		{ cat "/tmp/$name-build.log"; fail "building vdk-vmm failed"; }
fi
[ -x "$vmm" ] || fail "$vmm missing"

# ---- the guest, with the vmmdisk test ------------------------------------------
dir=${LINUX_VMM_DIR:-$root/build/linux-vmm}
mkdir -p "$dir/tests" || fail "cannot create $dir"
# Written only when the text changes, so build-guest.sh keeps the guest it
# built last time.
cat >"$dir/vmmdisk.sh.new" <<'GUEST'
#!/bin/sh
# vmmdisk: disk I/O through vdk-vmm's virtio-blk (tests/integration/linux_vmm.sh).
detail() { echo "$*" >"$VDK_TEST_DETAIL"; echo "vmmdisk: $*"; }
bad() { detail "$*"; exit 1; }
word() { # word KEY: the value of KEY= on the kernel command line
	for w in $(cat /proc/cmdline); do
		case "$w" in "$1"=*) echo "${w#*=}"; return ;; esac
	done
}
by_serial() { # by_serial ID: the vdX whose virtio-blk serial is ID
	for s in /sys/block/vd*/serial; do
		[ -r "$s" ] && [ "$(cat "$s")" = "$1" ] && { basename "$(dirname "$s")"; return; }
	done
}
sum() { # sum DEV SKIP_MIB: SHA-256 of one MiB, read with O_DIRECT
	dd if="/dev/$1" bs=1M skip="$2" count=1 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1
}

rw=$(by_serial vdk-linux-rw)
ro=$(by_serial vdk-linux-ro)
[ -n "$rw" ] || bad "no virtio disk with serial vdk-linux-rw ($(ls /sys/block))"
[ -n "$ro" ] || bad "no virtio disk with serial vdk-linux-ro"
[ "$(cat /sys/block/$rw/size)" = 8192 ] || bad "$rw: $(cat /sys/block/$rw/size) sectors, expected 8192"
[ "$(cat /sys/block/$ro/size)" = 2048 ] || bad "$ro: $(cat /sys/block/$ro/size) sectors, expected 2048"
[ "$(cat /sys/block/$rw/ro)" = 0 ] || bad "$rw is read-only"
[ "$(cat /sys/block/$ro/ro)" = 1 ] || bad "$ro is not read-only (VIRTIO_BLK_F_RO)"

[ "$(sum "$rw" 0)" = "$(word vdk.rw_sha)" ] || bad "$rw MiB 0: SHA-256 differs from the host's"
[ "$(sum "$ro" 0)" = "$(word vdk.ro_sha)" ] || bad "$ro: SHA-256 differs from the host's"

dd if="/dev/$rw" of="/dev/$rw" bs=1M count=1 seek=2 iflag=direct oflag=direct conv=fsync 2>/dev/null ||
	bad "$rw: copying MiB 0 to MiB 2 failed"
[ "$(sum "$rw" 2)" = "$(word vdk.rw_sha)" ] || bad "$rw MiB 2: read back differs"
printf 'VDK-LINUX-WROTE %s\n' "$(uname -r)" | dd of="/dev/$rw" bs=512 seek=6144 conv=sync,fsync 2>/dev/null ||
	bad "$rw: writing the text sector failed"

if dd if=/dev/zero of="/dev/$ro" bs=512 count=1 oflag=direct 2>/dev/null; then
	bad "$ro: a write to the read-only disk succeeded"
fi
[ "$(sum "$ro" 0)" = "$(word vdk.ro_sha)" ] || bad "$ro changed after the refused write"
detail "$rw rw and $ro ro: read, copy 1 MiB, fsync, read back, ro write refused"
GUEST
if ! cmp -s "$dir/vmmdisk.sh.new" "$dir/tests/vmmdisk.sh"; then
	mv "$dir/vmmdisk.sh.new" "$dir/tests/vmmdisk.sh"
else
	rm -f "$dir/vmmdisk.sh.new"
fi
"$root/scripts/build-guest.sh" "$dir/guest" "$dir/tests" >"$dir/build-guest.log" 2>&1 ||
	{ tail -n 20 "$dir/build-guest.log"; fail "scripts/build-guest.sh failed (see $dir/build-guest.log)"; }

# ---- disks ---------------------------------------------------------------------------
work=$(mktemp -d /tmp/$name.XXXXXX)
trap 'rm -rf "$work"' EXIT
sums=$(python3 - "$work" <<'PY'
import hashlib, random, sys
d = sys.argv[1]
rng = random.Random(0x7664)
rw = bytes(rng.getrandbits(8) for _ in range(1 << 20))
ro = bytes(rng.getrandbits(8) for _ in range(1 << 20))
with open(f"{d}/rw.img", "wb") as f:
    f.write(rw + bytes(3 << 20))
with open(f"{d}/ro.img", "wb") as f:
    f.write(ro)
print(hashlib.sha256(rw).hexdigest(), hashlib.sha256(ro).hexdigest())
PY
) || fail "creating disk images"
read -r rw_sha ro_sha <<<"$sums"
cp "$work/ro.img" "$work/ro.orig"

# ---- boot ------------------------------------------------------------------------------
log=$work/console.log
start=$(date +%s%N)
timeout "$TIMEOUT" "$vmm" --kernel "$dir/guest/vmlinuz" \
	--initrd "$dir/guest/initramfs.cpio.gz" --memory 512M \
	--disk "$work/rw.img,serial=vdk-linux-rw" \
	--disk "$work/ro.img,readonly,serial=vdk-linux-ro" \
	--cmdline "quiet vdk.test=vmmdisk vdk.timeout=60 vdk.rw_sha=$rw_sha vdk.ro_sha=$ro_sha" \
	</dev/null >"$log" 2>"$work/vmm.err"
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
# Strip \r and escape sequences (docs/guest.md, "Test protocol").
sed -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[a-z]//g' "$log" >"$log.txt"
echo "---- vdk-vmm (exit $rc, ${ms} ms)"
grep -a -e 'VDK-GUEST' -e 'VDK-TEST' -e 'vmmdisk' "$log.txt"
echo "---- vdk-vmm stderr"
cat "$work/vmm.err"

[ "$rc" -ne 124 ] || { tail -n 30 "$log.txt"; fail "the guest did not power off within ${TIMEOUT}s"; }
grep -aq 'VDK-TEST: vmmdisk: PASS' "$log.txt" ||
	{ tail -n 30 "$log.txt"; fail "no 'VDK-TEST: vmmdisk: PASS' verdict"; }
grep -aq 'VDK-GUEST: virtio .* id 0x0002 driver virtio_blk on LNRO0005' "$log.txt" ||
	fail "no virtio-blk bound to virtio_blk on an ACPI (LNRO0005) virtio-mmio device"
[ "$rc" -eq 0 ] || fail "vdk-vmm exit status $rc, expected 0 (ACPI poweroff)"

python3 - "$work/rw.img" <<'PY' || fail "host: what the guest wrote is not in rw.img"
import sys
d = open(sys.argv[1], "rb").read()
m = 1 << 20
if d[2 * m:3 * m] != d[:m]:
    sys.exit("MiB 2 != MiB 0")
if not d[3 * m:3 * m + 512].startswith(b"VDK-LINUX-WROTE "):
    sys.exit("no text sector at MiB 3: %r" % d[3 * m:3 * m + 32])
PY
cmp -s "$work/ro.img" "$work/ro.orig" || fail "host: the read-only image changed"

pass "($(grep -a -o 'VDK-TEST: vmmdisk: PASS.*' "$log.txt" | head -n1), boot to poweroff ${ms} ms)"
