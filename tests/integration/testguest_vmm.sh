#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# vdk-testguest under vdk-vmm (KVM): vdk's driver side (src/driver/, in
# the freestanding PVH guest testguest/) against vdk's device side (libvdk
# in vdk-vmm), found through vdk-vmm's ACPI tables (LNRO0005 devices).
#
# Devices: a writable virtio-blk disk with serial vdk-rw-0001, a read-only
# one with serial vdk-ro-0001, virtio-rng, and virtio-console when this
# vdk-vmm has one (its --help mentions virtio-console).
#
# Checks: every "VDK-TESTGUEST: <check>: PASS|FAIL" line is PASS, each
# expected check is there, the guest reaches "done N passed, 0 failed" and
# powers off by itself (vdk-vmm exit status 0) within the timeout; then, on
# the host, the sector the guest wrote (8) holds the guest's pattern, and
# the read-only image is byte for byte unchanged.
#
# Second boot, "hostile" (vdk.hostile=1, testguest/hostile.c): the guest
# reads and writes unclaimed MMIO (past the last virtio-mmio window, and
# in a hole below 4 GiB) and unclaimed I/O ports, 1000 times each, and
# breaks virtio-rng's requestq (a buffer outside guest RAM, a descriptor
# loop; then 50 more loops, each followed by a reset). Expected: reads
# give zeroes (MMIO) or all ones (ports), the rng reports
# DEVICE_NEEDS_RESET every time and works again after a reset, the disks
# keep working, vdk-vmm exits 0 after the guest's poweroff, and its stderr
# has the messages about all of it rate-limited: at least one and at most
# $RL_MAX lines of each kind, not thousands. The disk layout is the
# one testguest/blk.c and tests/integration/testguest_microvm.sh use:
# sector 0 "VDK-TESTDISK-0001" then byte i = (i*7+3) & 0xff; the guest
# writes sector 8 "VDK-GUEST-WROTE-" then byte i = (i*13+5) & 0xff.
#
# Exit: 0 PASS, 1 FAIL, 77 SKIPPED (not x86-64, no /dev/kvm or no access
# to it, KVM unusable for vdk-vmm, no python3). Environment: VDK_BUILD_DIR
# (default build/ if configured, else /tmp/vdk-testguest-vmm-build),
# VDK_VMM (default: <build>/vmm/vdk-vmm), TESTGUEST_TIMEOUT (seconds,
# default 60), TESTGUEST_TRANSPORT (mmio, the default, or pci: every device
# on vdk-vmm's PCI host bridge, found by scanning bus 0 through ports
# 0xCF8/0xCFC instead of ACPI; the hostile boot adds the PCI checks of
# testguest/hostile.c; testguest_vmm_pci.sh runs that).
set -uo pipefail

transport=${TESTGUEST_TRANSPORT:-mmio}
case $transport in
mmio) name=testguest_vmm ;;
pci) name=testguest_vmm_pci ;;
*) echo "TESTGUEST_TRANSPORT=$transport: mmio or pci"; exit 1 ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd)
TIMEOUT=${TESTGUEST_TIMEOUT:-60}
# Most log lines of one kind the hostile boot may cause (vdk's limiter
# allows 10 per 5 s; the guest triggers each kind 50 to 2000 times).
RL_MAX=50

pass() { echo "$name: PASS $*"; exit 0; }
fail() { echo "$name: FAIL $*"; exit 1; }
skip() { echo "$name: SKIPPED: $*" >&2; echo "$name: SKIPPED: $*"; exit 77; }

. "$root/tests/integration/lib/vmm_harness.sh"
[ "$(uname -m)" = x86_64 ] || skip "host is $(uname -m), vdk-testguest is x86-64"
command -v python3 >/dev/null || skip "python3 not found"
command -v timeout >/dev/null || skip "timeout (coreutils) not found"

# ---- build (on the host; the nested L1 guest gets the results) -------------
if [ -n "${VDK_BUILD_DIR:-}" ]; then
	build=$VDK_BUILD_DIR
elif [ -f "$root/build/build.ninja" ] || harness_in_l1; then
	build=$root/build
else
	build=/tmp/vdk-testguest-vmm-build
fi
guest=$build/testguest/vdk-testguest
vmm=${VDK_VMM:-$build/vmm/vdk-vmm}
if ! harness_in_l1; then
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$root" >"/tmp/$name-setup.log" 2>&1 ||
			fail "meson setup $build failed (see /tmp/$name-setup.log)"
	fi
	targets=(testguest/vdk-testguest)
	[ -n "${VDK_VMM:-}" ] || targets+=(vmm/vdk-vmm)
	if ! ninja -C "$build" "${targets[@]}" >"/tmp/$name-build.log" 2>&1; then
		grep -q "unknown target" "/tmp/$name-build.log" &&
			skip "vdk-testguest or vdk-vmm is not built here (see meson's message)"
		cat "/tmp/$name-build.log"
		fail "building ${targets[*]} failed"
	fi
fi
[ -f "$guest" ] || fail "$guest missing after the build"
[ -x "$vmm" ] || fail "$vmm missing after the build"

# Here, or nested in an L1 guest (lib/vmm_harness.sh).
harness_guest=freestanding # no Linux: runs directly where /dev/kvm can run it
harness_run "$@"
[ -e /dev/kvm ] || skip "/dev/kvm does not exist (no KVM on this host)"
[[ -r /dev/kvm && -w /dev/kvm ]] || skip "/dev/kvm is not readable and writable by $(id -un)"

work=$(mktemp -d /tmp/$name.XXXXXX)
trap 'rm -rf "$work"' EXIT

# ---- disk images -----------------------------------------------------------
python3 - "$work" <<'PY' || fail "creating disk images"
import sys
d = sys.argv[1]
magic = b"VDK-TESTDISK-0001"
s0 = magic + bytes((i * 7 + 3) & 0xff for i in range(len(magic), 512))
for n in ("rw.img", "ro.img"):
    with open(f"{d}/{n}", "wb") as f:
        f.write(s0 + bytes(1024 * 1024 - 512))
PY
cp "$work/ro.img" "$work/ro.orig"

# ---- virtio-console, if this vdk-vmm has one ---------------------------------
# Its option is the first --word of the --help line that names
# virtio-console; it takes a file for the guest's output (like --console).
help=$("$vmm" --help 2>&1) || fail "$vmm --help failed"
con_opt=$(grep -i 'virtio-console' <<<"$help" | grep -o -m1 -- '--[a-z0-9-]*' | head -n1)
con_args=()
expect=blk:2,rng:1
con_checks=()
if [ -n "$con_opt" ]; then
	con_args=("$con_opt" "$work/vconsole.out")
	expect=blk:2,rng:1,console:1
	con_checks=(console.init console.write)
	echo "$name: vdk-vmm has a virtio-console ($con_opt): checking it too"
else
	echo "$name: note: this vdk-vmm has no virtio-console (not in --help): console checks not run"
fi

serial=vdk-rw-0001
# boot LABEL EXTRA_CMDLINE: run the guest; sets rc and ms; guest output in
# $work/LABEL.log.txt, vdk-vmm's stderr in $work/LABEL.err.
boot() {
	local label=$1 extra=$2 log=$work/$1.log start
	start=$(date +%s%N)
	timeout "$TIMEOUT" "$vmm" --transport "$transport" --kernel "$guest" --memory 128M \
		--disk "$work/rw.img,serial=$serial" \
		--disk "$work/ro.img,readonly,serial=vdk-ro-0001" \
		--rng "${con_args[@]}" \
		--cmdline "vdk.serial=$serial vdk.expect=$expect$extra" \
		</dev/null >"$log" 2>"$work/$label.err"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	tr -d '\r' <"$log" >"$log.txt"
	echo "---- $label: $vmm (exit $rc, ${ms} ms)"
	grep -a 'VDK-TESTGUEST' "$log.txt"
	echo "---- $label: vdk-vmm stderr"
	cat "$work/$label.err"
}

boot normal ""
log=$work/normal.log
# vdk-vmm could not use KVM at all (no guest output, a KVM error at setup):
# that is the host's limit, not a failure of the code under test.
if [ "$rc" -eq 1 ] && ! grep -aq 'VDK-TESTGUEST' "$log.txt" &&
	grep -qi 'kvm' "$work/normal.err"; then
	skip "KVM unusable for vdk-vmm here: $(head -n1 "$work/normal.err")"
fi
[ "$rc" -ne 124 ] || fail "guest did not power off within ${TIMEOUT}s"
! grep -aq '^VDK-TESTGUEST: .*: FAIL' "$log.txt" ||
	fail "$(grep -a -c '^VDK-TESTGUEST: .*: FAIL' "$log.txt") check(s) failed"
grep -aq '^VDK-TESTGUEST: done [0-9]* passed, 0 failed$' "$log.txt" ||
	fail "no 'done ... 0 failed' line"
for c in pvh-start-info memmap discovery devices \
	blk.rw.init blk.rw.read0 blk.rw.read-beyond-end blk.rw.get-id \
	blk.rw.write blk.rw.readback blk.rw.flush blk.rw.reset-reinit \
	blk.ro.init blk.ro.read0 blk.ro.read-beyond-end blk.ro.get-id \
	blk.ro.write-refused rng.init rng.read "${con_checks[@]}"; do
	grep -aq "^VDK-TESTGUEST: $c: PASS" "$log.txt" || fail "check '$c' missing"
done
[ "$rc" -eq 0 ] || fail "vdk-vmm exit status $rc, expected 0 (ACPI poweroff)"

ndev=$((3 + ${#con_args[@]} / 2))
if [ "$transport" = mmio ]; then
	# The devices came from vdk-vmm's ACPI tables, not the command line.
	grep -aq "^VDK-TESTGUEST: info: acpi: .*hw-reduced.* $ndev LNRO0005" "$log.txt" ||
		fail "the guest did not find $ndev LNRO0005 devices in vdk-vmm's DSDT"
	grep -aq "^VDK-TESTGUEST: discovery: PASS $ndev windows (acpi $ndev, cmdline 0), 0 pci" "$log.txt" ||
		fail "discovery: expected $ndev windows, all from ACPI"
else
	# Every device a virtio-pci function on bus 0, none on virtio-mmio.
	grep -aq "^VDK-TESTGUEST: discovery: PASS 0 windows (acpi 0, cmdline 0), $ndev pci" "$log.txt" ||
		fail "discovery: expected $ndev virtio-pci functions and no virtio-mmio window"
	[ "$(grep -ac '^VDK-TESTGUEST: info: device [0-9]* at pci 00:' "$log.txt")" -eq "$ndev" ] ||
		fail "expected $ndev 'device N at pci' lines"
fi

# ---- on the host ---------------------------------------------------------------
python3 - "$work/rw.img" <<'PY' || fail "host: guest-written sector 8 not in rw.img (or sector 0 changed)"
import sys
magic = b"VDK-GUEST-WROTE-"
want = magic + bytes((i * 13 + 5) & 0xff for i in range(len(magic), 512))
m0 = b"VDK-TESTDISK-0001"
s0 = m0 + bytes((i * 7 + 3) & 0xff for i in range(len(m0), 512))
with open(sys.argv[1], "rb") as f:
    data = f.read()
if data[8 * 512:9 * 512] != want:
    print("sector 8:", data[8 * 512:8 * 512 + 32])
    sys.exit(1)
if data[:512] != s0:
    sys.exit(1)
PY
cmp -s "$work/ro.img" "$work/ro.orig" || fail "host: the read-only image changed"
if [ -n "$con_opt" ]; then
	grep -q 'VDK-TESTGUEST: hello through virtio-console' "$work/vconsole.out" 2>/dev/null ||
		fail "virtio-console output missing (got: $(head -c 200 "$work/vconsole.out" 2>/dev/null))"
fi

normal="$(grep -a -o 'done [0-9]* passed' "$log.txt"), boot to poweroff ${ms} ms"

# ---- hostile boot ------------------------------------------------------------------
boot hostile " vdk.hostile=1"
log=$work/hostile.log
err=$work/hostile.err
[ "$rc" -ne 124 ] || fail "hostile: guest did not power off within ${TIMEOUT}s"
! grep -aq '^VDK-TESTGUEST: .*: FAIL' "$log.txt" ||
	fail "hostile: $(grep -a -c '^VDK-TESTGUEST: .*: FAIL' "$log.txt") check(s) failed"
grep -aq '^VDK-TESTGUEST: done [0-9]* passed, 0 failed$' "$log.txt" ||
	fail "hostile: no 'done ... 0 failed' line"
hostile_checks=(hostile.mmio.past-windows)
[ "$transport" = pci ] && hostile_checks=(hostile.pci.absent hostile.pci.read-only
	hostile.pci.cfg-window hostile.pci.bar-sizing)
for c in "${hostile_checks[@]}" hostile.mmio.hole hostile.mmio.flood \
	hostile.pio hostile.pio.flood hostile.rng.before \
	hostile.rng.bad-addr hostile.rng.bad-addr-recovery \
	hostile.rng.bad-addr-small hostile.rng.bad-addr-small-recovery \
	hostile.rng.loop hostile.rng.loop-recovery hostile.rng.repeat \
	hostile.others-alive; do
	grep -aq "^VDK-TESTGUEST: $c: PASS" "$log.txt" || fail "hostile: check '$c' missing"
done
# vdk stops the device for every broken chain, however small the buffer
# (QEMU 7.2 serves a small one through its bounce buffer: see
# testguest/README.md).
for c in bad-addr bad-addr-small loop; do
	grep -aq "^VDK-TESTGUEST: hostile.rng.$c: PASS stopped: DEVICE_NEEDS_RESET" "$log.txt" ||
		fail "hostile: rng.$c did not end in DEVICE_NEEDS_RESET"
done
[ "$rc" -eq 0 ] || fail "hostile: vdk-vmm exit status $rc, expected 0 (the VMM must survive the guest)"
cmp -s "$work/ro.img" "$work/ro.orig" || fail "hostile: the read-only image changed"

# count_lines WHAT PATTERN: between 1 and RL_MAX lines of stderr match.
count_lines() {
	local n
	n=$(grep -c -- "$2" "$err")
	echo "$name: hostile: $n vdk-vmm message(s) about $1"
	[ "$n" -ge 1 ] || fail "hostile: vdk-vmm logged nothing about $1"
	[ "$n" -le "$RL_MAX" ] || fail "hostile: $n messages about $1 (not rate-limited; at most $RL_MAX)"
}
count_lines "unclaimed MMIO (1020 accesses)" 'unclaimed MMIO address'
count_lines "the broken requestq (53 times)" 'requestq stopped'
count_lines "stopped queues (53 times)" 'queue [0-9]* stopped'
total=$(wc -l <"$err")
[ "$total" -le $((4 * RL_MAX)) ] || fail "hostile: $total lines on vdk-vmm's stderr"

pass "($normal; hostile: $(grep -a -o 'done [0-9]* passed' "$log.txt"), ${ms} ms, $total stderr lines)"
